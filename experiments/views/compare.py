"""Comparing experiments: curves overlaid, the config diff and the per-task final results."""

from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from experiments import selectors
from experiments.figures import compare_figures
from experiments.forms import config_of


def _ids(request):
    """Experiment ids from ``?ids=1,2,3`` or repeated ``?pick=`` (the list's checkboxes), in
    order, without repeats, at most COMPARE_LIMIT."""
    raw = ",".join(request.GET.getlist("ids") + request.GET.getlist("pick"))
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in ids:
            ids.append(int(part))
    return ids[: selectors.COMPARE_LIMIT]


@require_GET
def experiments_compare(request):
    ids = _ids(request)
    context = {"section": "experiments", "ids": ",".join(map(str, ids)), "limit": selectors.COMPARE_LIMIT}
    if len(ids) >= 2:
        runs = selectors.compare_runs(ids)
        experiments = runs["experiments"]
        configs = [config_of(e) for e in experiments]
        keys = list(dict.fromkeys(k for c in configs for k in c))
        differing = [
            {"key": k, "values": [c.get(k) for c in configs]}
            for k in keys
            if len({repr(c.get(k)) for c in configs}) > 1
        ]
        context.update(
            runs=runs,
            experiments=experiments,
            differing=differing,
            figures=compare_figures(runs["curves"], runs["bucket"]),
            solves_only=[(e, runs["solves_only"][e.pk]) for e in experiments],
        )
    return render(request, "experiments/compare.html", context)


urlpatterns = [
    path("experiments/compare/", experiments_compare, name="experiment-compare"),
]
