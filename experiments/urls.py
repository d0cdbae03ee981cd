from django.urls import path

from experiments import views
from experiments.views.experiments import experiment_progress_json
from experiments.views.suites import suite_dry_run

urlpatterns = [
    path("", views.experiments_index, name="home"),
    path("suites/", views.suites_index, name="suites"),
    path("suites/new/", views.suite_new, name="suite-new"),
    path("suites/<str:name>/", views.suite_detail, name="suite"),
    path("suites/<str:name>/edit/", views.suite_edit, name="suite-edit"),
    path("suites/<str:name>/download/", views.suite_download, name="suite-download"),
    path("suites/<str:name>/tasks/<str:task_id>/", views.suite_task, name="suite-task"),
    path("suites/<str:name>/tasks/<str:task_id>/check/", views.suite_check, name="suite-check"),
    path("suites/<str:name>/tasks/<str:task_id>/dry-run/", suite_dry_run, name="suite-dry-run"),
    path("experiments/<int:pk>/progress.json", experiment_progress_json, name="experiment-progress"),
    path("review/", views.review_index, name="review"),
]
