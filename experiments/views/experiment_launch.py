"""The new-experiment form: generated from the hyperparameter schema, with presets and "clone from
run" (the parent's config prefilled and the diff to it shown before launching). It launches
through services.start_experiment, the path of ``manage.py experiment start``."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from experiments import hyperparameters
from experiments.forms import (
    KNOWN_MODELS,
    PRESETS,
    LaunchForm,
    config_diff,
    config_of,
    launch_initial,
    shown_value,
)
from experiments.models import Experiment
from experiments.roles import LAUNCH_EXPERIMENT
from experiments.services import ExperimentError, start_experiment


def _parent(pk):
    if pk in (None, ""):
        return None
    try:
        return get_object_or_404(Experiment.objects.select_related("suite"), pk=int(pk))
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
def experiment_new(request):
    if not request.user.has_perm(LAUNCH_EXPERIMENT):
        raise PermissionDenied("Only operators may launch experiments.")
    if request.method == "POST":
        form = LaunchForm(request.POST)
        parent = _parent(request.POST.get("clone"))
        if form.is_valid():
            data = form.cleaned_data
            try:
                experiment = start_experiment(
                    request.user,
                    data["suite"],
                    data["model"].strip(),
                    data["algorithm"],
                    data["hyperparameters"],
                    name=data["name"].strip() or None,
                    parent=parent,
                )
            except ExperimentError as err:
                form.add_problem(str(err))
            else:
                cloned = f" (cloned from #{parent.pk})" if parent else ""
                messages.success(request, f"Launched experiment #{experiment.pk}{cloned}.")
                return redirect("experiment", pk=experiment.pk)
        status = 400
    else:
        parent = _parent(request.GET.get("clone"))
        form = LaunchForm(initial=launch_initial(preset=request.GET.get("preset"), parent=parent))
        status = 200
    parent_config = _shown_config(config_of(parent)) if parent else None
    return render(
        request,
        "experiments/experiment_new.html",
        {
            "section": "experiments",
            "form": form,
            "presets": [(key, preset["label"]) for key, preset in PRESETS.items()],
            "preset": request.GET.get("preset"),
            "parent": parent,
            "parent_config": parent_config,
            "diff": config_diff(parent_config, _submitted_config(form)) if parent else [],
            "known_models": KNOWN_MODELS,
        },
        status=status,
    )


def _shown_config(config):
    """A config as the form's inputs show it: lists comma-separated, numbers as they are."""
    shown = {}
    for key, value in config.items():
        spec = hyperparameters.BY_NAME.get(key)
        shown[key] = shown_value(spec, value) if spec else value
    return shown


def _submitted_config(form):
    """The config the form holds now (posted or initial), for the diff to the parent."""
    config = {}
    for key in ("suite", "model", "algorithm", *hyperparameters.BY_NAME):
        if key not in form.fields:
            continue
        if form.is_bound:
            value = (
                form.cleaned_data.get(key) if key in getattr(form, "cleaned_data", {}) else form.data.get(key)
            )
            config[key] = value.name if key == "suite" and hasattr(value, "name") else value
        else:
            config[key] = form.initial.get(key, form.fields[key].initial)
    spec_list = {s.name for s in hyperparameters.FIELDS if s.type == hyperparameters.LIST}
    return {k: (", ".join(v) if k in spec_list and isinstance(v, list) else v) for k, v in config.items()}


urlpatterns = [
    path("experiments/new/", experiment_new, name="experiment-new"),
]
