from django.urls import path

from simulator import views

urlpatterns = [
    path("worlds/", views.worlds_index, name="simulator-worlds"),
]
