from django.urls import path

from experiments.views import (
    compare,
    episodes,
    experiment_group,
    experiment_launch,
    experiments,
    review,
    suites,
)

urlpatterns = [
    path("suites/", suites.suites_index, name="suites"),
    path("suites/new/", suites.suite_new, name="suite-new"),
    path("suites/<str:name>/", suites.suite_detail, name="suite"),
    path("suites/<str:name>/edit/", suites.suite_edit, name="suite-edit"),
    path("suites/<str:name>/download/", suites.suite_download, name="suite-download"),
    path("suites/<str:name>/tasks/<str:task_id>/", suites.suite_task, name="suite-task"),
    path("suites/<str:name>/tasks/<str:task_id>/check/", suites.suite_check, name="suite-check"),
    path("suites/<str:name>/tasks/<str:task_id>/dry-run/", suites.suite_dry_run, name="suite-dry-run"),
    *experiment_launch.urlpatterns,
    *compare.urlpatterns,
    *experiments.urlpatterns,
    *experiment_group.urlpatterns,
    *episodes.urlpatterns,
    *review.urlpatterns,
]
