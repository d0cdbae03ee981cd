from django.urls import path

from experiments.views import episodes, experiments, review, suites

urlpatterns = [
    path("suites/", suites.suites_index, name="suites"),
    path("suites/new/", suites.suite_new, name="suite-new"),
    path("suites/<str:name>/", suites.suite_detail, name="suite"),
    path("suites/<str:name>/edit/", suites.suite_edit, name="suite-edit"),
    path("suites/<str:name>/download/", suites.suite_download, name="suite-download"),
    path("suites/<str:name>/tasks/<str:task_id>/", suites.suite_task, name="suite-task"),
    path("suites/<str:name>/tasks/<str:task_id>/check/", suites.suite_check, name="suite-check"),
    path("suites/<str:name>/tasks/<str:task_id>/dry-run/", suites.suite_dry_run, name="suite-dry-run"),
    *experiments.urlpatterns,
    *episodes.urlpatterns,
    *review.urlpatterns,
]
