"""Experiment pages and the endpoints they poll."""

from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from experiments.models import Experiment
from experiments.services import experiment_progress

LIST_LIMIT = 100


def experiments_index(request):
    """The newest experiments with their progress."""
    experiments = (
        Experiment.objects.select_related("suite", "owner")
        .annotate(episodes_done=Count("episodes"))
        .order_by("-created_at")[:LIST_LIMIT]
    )
    return render(request, "experiments/index.html", {"section": "experiments", "experiments": experiments})


@never_cache
@require_GET
def experiment_progress_json(request, pk):
    """Status, iteration, episodes done/total, ETA and the latest metrics, for live pages."""
    experiment = get_object_or_404(Experiment, pk=pk)
    return JsonResponse(experiment_progress(experiment))


urlpatterns = [
    path("", experiments_index, name="home"),
    path("experiments/<int:pk>/progress.json", experiment_progress_json, name="experiment-progress"),
]
