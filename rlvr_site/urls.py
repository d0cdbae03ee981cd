from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from rlvr_site.health import healthz
from simulator.openapi import openapi_json

urlpatterns = [
    path("", include("experiments.urls")),
    path("simulator/", include("simulator.urls")),
    path("sim/openapi.json", openapi_json, name="simulator-openapi"),
    path("sim/", include("simulator.api_urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
