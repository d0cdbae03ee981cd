"""The HTTP door: /sim/<world>/... (Jira at the base, Confluence under /wiki/)."""

from django.urls import path

from simulator import views

urlpatterns = [
    path("<slug:world>/<path:rest>", views.api, name="simulator-api"),
]
