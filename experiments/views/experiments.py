"""Experiment pages and the endpoints they poll: the list, the experiment page with its live
curves (curves.json, progress.json), the controls and the checkpoint downloads.

Reading is open to every signed-in user; pausing, resuming and cancelling need the
``experiments.launch_experiment`` permission (operators). Everything a model or a user wrote is
escaped by the templates and handed to scripts as JSON (json_script), never as markup.
"""

import json
import os
import tempfile
import zipfile

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, re_path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from experiments import selectors
from experiments.figures import experiment_figures
from experiments.forms import list_filters
from experiments.hyperparameters import BY_NAME
from experiments.models import Checkpoint, Experiment
from experiments.roles import LAUNCH_EXPERIMENT
from experiments.services import (
    ExperimentError,
    cancel_experiment,
    experiment_progress,
    pause_experiment,
    resume_experiment,
)

EPISODES_URL = "/episodes/"  # the episodes browser (issue 9); a plain path until its view exists
CONTROLS = {"pause": pause_experiment, "resume": resume_experiment, "cancel": cancel_experiment}
POLL_MS = 3000
CURVES_CACHE_SECONDS = 600


def _context(**values):
    return {"section": "experiments", **values}


@require_GET
def experiments_index(request):
    """The newest experiments with their progress and best held-out reward, filtered and sorted."""
    form, filters, sort = list_filters(request.GET)
    return render(
        request,
        "experiments/index.html",
        _context(
            experiments=selectors.experiment_rows(filters, sort),
            form=form,
            filtered=bool(filters),
            limit=selectors.LIST_LIMIT,
            can_launch=request.user.has_perm(LAUNCH_EXPERIMENT),
        ),
    )


def _experiment(pk):
    return get_object_or_404(Experiment.objects.select_related("suite", "owner", "parent"), pk=pk)


@require_GET
def experiment_detail(request, pk):
    """One experiment: status, progress and controls, its curves (drawn from curves.json and
    polled while it runs), the groups of its latest iteration, checkpoints and configuration."""
    experiment = _experiment(pk)
    progress = experiment_progress(experiment)
    page = selectors.experiment_page(experiment)
    config = {
        "experiment": experiment.pk,
        "status": experiment.status,
        "finished": experiment.finished,
        "progressUrl": reverse("experiment-progress", args=[experiment.pk]),
        "curvesUrl": reverse("experiment-curves", args=[experiment.pk]),
        "episodesUrl": EPISODES_URL,
        "pollMs": POLL_MS,
    }
    return render(
        request,
        "experiments/experiment.html",
        _context(
            experiment=experiment,
            progress=progress,
            page=page,
            hyperparameters=[
                (name, value, BY_NAME[name].help if name in BY_NAME else "")
                for name, value in experiment.hyperparameters.items()
            ],
            can_control=request.user.has_perm(LAUNCH_EXPERIMENT),
            page_config=config,
            episodes_url=EPISODES_URL,
            training_figures=selectors.TRAINING_METRICS,
            trend_window=selectors.TREND_WINDOW,
        ),
    )


@never_cache
@require_GET
def experiment_curves_json(request, pk):
    """The page's figures (plotly figure dicts) and each task's trend, from SQL aggregates. The
    page polls it while the run goes on: what was computed for the same history (same status,
    iteration, number of episodes and of metric points) is served from the cache."""
    experiment = get_object_or_404(selectors.with_history_size(Experiment.objects.defer("traceback")), pk=pk)
    key = selectors.curves_cache_key(experiment)
    body = cache.get(key)
    if body is None:
        curves = selectors.experiment_curves(experiment)
        body = json.dumps(
            {
                "experiment": experiment.pk,
                "status": experiment.status,
                "finished": experiment.finished,
                "bucket": curves["bucket"],
                "trends": curves["trends"],
                "figures": experiment_figures(curves),
            },
            cls=DjangoJSONEncoder,
        )
        cache.set(key, body, CURVES_CACHE_SECONDS)
    return HttpResponse(body, content_type="application/json")


@never_cache
@require_GET
def experiment_progress_json(request, pk):
    """Status, iteration, episodes done/total, ETA and the latest metrics, for live pages."""
    experiment = get_object_or_404(Experiment, pk=pk)
    return JsonResponse(experiment_progress(experiment))


@require_POST
def experiment_control(request, pk, action):
    """Pause, resume or cancel (operators only); the page says when the status forbids it."""
    if not request.user.has_perm(LAUNCH_EXPERIMENT):
        raise PermissionDenied("Only operators may pause, resume or cancel experiments.")
    experiment = _experiment(pk)
    try:
        CONTROLS[action](experiment)
    except ExperimentError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Experiment #{experiment.pk}: {experiment.status}.")
    return redirect("experiment", pk=experiment.pk)


@require_GET
def checkpoint_download(request, pk, version):
    """The adapter folder of one checkpoint as a zip, read from the default storage; 404 when the
    checkpoint or its files are gone."""
    checkpoint = get_object_or_404(Checkpoint, experiment_id=pk, version=version)
    files = _stored_files(checkpoint.path)
    if not files:
        raise Http404(f"the files of checkpoint v{version} are gone from the storage")
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in files:
            with (
                default_storage.open(name) as source,
                zipped.open(os.path.relpath(name, checkpoint.path), "w") as out,
            ):
                for chunk in source.chunks():
                    out.write(chunk)
    archive.seek(0)
    filename = f"experiment-{pk}-v{version}.zip"
    return FileResponse(archive, as_attachment=True, filename=filename, content_type="application/zip")


def _stored_files(folder):
    """Every file under ``folder`` in the default storage (names relative to the storage)."""
    try:
        if not default_storage.exists(folder):
            return []
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [f"{folder}/{name}" for name in files]
    for sub in dirs:
        found += _stored_files(f"{folder}/{sub}")
    return sorted(found)


urlpatterns = [
    path("", experiments_index, name="home"),
    path("experiments/<int:pk>/", experiment_detail, name="experiment"),
    path("experiments/<int:pk>/curves.json", experiment_curves_json, name="experiment-curves"),
    path("experiments/<int:pk>/progress.json", experiment_progress_json, name="experiment-progress"),
    re_path(
        r"^experiments/(?P<pk>[0-9]+)/(?P<action>pause|resume|cancel)/$",
        experiment_control,
        name="experiment-control",
    ),
    path(
        "experiments/<int:pk>/checkpoints/<int:version>/download/",
        checkpoint_download,
        name="experiment-checkpoint",
    ),
]
