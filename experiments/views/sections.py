from django.db.models import Count
from django.shortcuts import render

from experiments.models import Experiment

LIST_LIMIT = 100


def experiments_index(request):
    """The newest experiments with their progress; filters, sorting and curves come with the
    experiment pages."""
    experiments = (
        Experiment.objects.select_related("suite", "owner")
        .annotate(episodes_done=Count("episodes"))
        .order_by("-created_at")[:LIST_LIMIT]
    )
    return render(request, "experiments/index.html", {"section": "experiments", "experiments": experiments})


def review_index(request):
    # Review queues arrive with the review capability; until then the page says how.
    return render(request, "experiments/review.html", {"section": "review"})
