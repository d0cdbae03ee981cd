from django.urls import path

from experiments import views

urlpatterns = [
    path("", views.experiments_index, name="home"),
    path("suites/", views.suites_index, name="suites"),
    path("review/", views.review_index, name="review"),
]
