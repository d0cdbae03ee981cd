"""Experiment endpoints the pages poll."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from experiments.models import Experiment
from experiments.services import experiment_progress


@never_cache
@require_GET
def experiment_progress_json(request, pk):
    """Status, iteration, episodes done/total, ETA and the latest metrics, for live pages."""
    experiment = get_object_or_404(Experiment, pk=pk)
    return JsonResponse(experiment_progress(experiment))
