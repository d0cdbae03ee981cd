"""The GRPO group view: every sample of one task variant in one iteration side by side."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET

from experiments import selectors
from experiments.models import Experiment, Iteration


@require_GET
def experiment_group(request, pk, index, task_pk, variant):
    experiment = get_object_or_404(Experiment.objects.select_related("suite").defer("traceback"), pk=pk)
    try:
        group = selectors.grpo_group(experiment, index, task_pk, variant)
    except Iteration.DoesNotExist:
        raise Http404(f"experiment #{pk} has no iteration {index}") from None
    if not group["samples"]:
        raise Http404(f"iteration {index} has no samples of task {task_pk} variant {variant}")
    return render(
        request,
        "experiments/group.html",
        {
            "section": "experiments",
            "experiment": experiment,
            "group": group,
            "index": index,
            "variant": variant,
        },
    )


urlpatterns = [
    path(
        "experiments/<int:pk>/iterations/<int:index>/groups/<int:task_pk>/<int:variant>/",
        experiment_group,
        name="experiment-group",
    ),
]
