"""Episodes: the browser, the replay page with its step fragments and verifier timeline, the
re-run, the aligned comparison and the export.

Model output, API bodies and world values are untrusted text: the templates escape all of it.
Re-running forks a world, so it needs the review permission (reviewers and operators).
"""

import json
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from experiments import replay, review
from experiments.models import Episode, Experiment, QueueItem, Review, Step, Task
from experiments.roles import REVIEW_EPISODE


def _context(**values):
    return {"section": "episodes", **values}


def _query(filters, **extra):
    return urlencode({**filters, **extra})


@require_GET
def episodes_index(request):
    """Episodes filtered by experiment, iteration, task, split, success, reward range, label,
    review status and free text, sorted, in keyset pages of replay.PAGE_SIZE."""
    filters = replay.clean_filters(request.GET)
    can_review = request.user.has_perm(REVIEW_EPISODE)
    rows, after = replay.browser_page(filters, request.GET.get("after", ""))
    experiments = list(Experiment.objects.only("id", "name", "suite_id").order_by("-id")[:200])
    chosen = next((e for e in experiments if str(e.pk) == filters.get("experiment")), None)
    tasks = Task.objects.only("id", "task_id").order_by("task_id")
    tasks = list(tasks.filter(suite_id=chosen.suite_id) if chosen else tasks[:300])
    return render(
        request,
        "experiments/episodes.html",
        _context(
            rows=rows,
            after=after,
            paged=bool(request.GET.get("after")),
            filters=filters,
            query=_query(filters),
            experiments=experiments,
            tasks=tasks,
            sorts=replay.SORT_LABELS,
            labels=Review.LABELS,
            statuses=[("unreviewed", "unreviewed"), ("flagged", "flagged"), *Review.STATUSES],
            can_review=can_review,
            reviewers=_reviewers() if can_review else [],
        ),
    )


def _episode(pk):
    episode = (
        Episode.objects.select_related("experiment", "iteration", "task", "review__assignee")
        .defer("experiment__hyperparameters", "experiment__traceback")
        .filter(pk=pk)
        .first()
    )
    if episode is None:
        raise Http404(f"no episode {pk}")
    return episode


def _review_of(episode):
    try:
        return episode.review
    except Review.DoesNotExist:
        return None


def _queue_of(request, episode):
    """The queue the reviewer is working through (``?queue=<pk>``), with this episode's item."""
    queue_id = request.GET.get("queue") or request.POST.get("queue")
    if not (queue_id or "").isdecimal():
        return None, None
    item = QueueItem.objects.select_related("queue").filter(queue_id=int(queue_id), episode=episode).first()
    return (item.queue, item) if item else (None, None)


@require_GET
def episode_detail(request, pk):
    """The replay page: the step list, the current step (``?step=N``, the first by default; the
    others load as fragments), the verifier timeline (a fragment computed once), the final checks
    and reward breakdown, the review panel and the comments."""
    episode = _episode(pk)
    steps = replay.step_summaries(episode.pk)
    current = _int(request.GET.get("step"), 0)
    current = min(max(current, 0), len(steps) - 1) if steps else None
    step = (
        Step.objects.defer("token_bytes", "logprob_bytes").get(episode=episode, index=steps[current]["index"])
        if steps
        else None
    )
    existing = _review_of(episode)
    queue, item = _queue_of(request, episode)
    can_review = request.user.has_perm(REVIEW_EPISODE)
    suggested = existing.suggested_label if existing else review.suggest_label(episode, steps)
    flags = existing.flags if existing and existing.flags else review.suspicion_flags(episode, steps)
    breakdown = episode.details.get("breakdown") or {}
    group = Episode.objects.filter(
        experiment_id=episode.experiment_id,
        iteration_id=episode.iteration_id,
        task_id=episode.task_id,
        variant_index=episode.variant_index,
        split=episode.split,
    ).exclude(pk=episode.pk)
    best = group.order_by("-reward", "id").values("id", "reward").first()
    return render(
        request,
        "experiments/episode.html",
        _context(
            episode=episode,
            steps=steps,
            current=current,
            detail=replay.step_detail(step) if step else None,
            seen=replay.observation_before(episode, step.index) if step else "",
            review=existing,
            suggested=suggested,
            flags=flags,
            verdicts=Review.VERDICTS,
            labels=[(n, value, name) for n, (value, name) in enumerate(Review.LABELS, 1)],
            statuses=Review.STATUSES,
            reviewers=_reviewers() if can_review else [],
            threads=review.comment_threads(episode),
            can_review=can_review,
            queue=queue,
            item=item,
            breakdown=breakdown,
            components=sorted((breakdown.get("components") or {}).items()),
            best=best,
            failed=[c for c in episode.checks if not c.get("passed")],
        ),
    )


def _reviewers():
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(groups__name__in=["reviewers", "operators"])
        .distinct()
        .only("id", "username")
        .order_by("username")
    )


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@require_GET
def episode_step(request, pk, index):
    """One step's panel (htmx fragment): the observation it acted on (the full prompt folded,
    loaded on opening with ``?prompt=1``), its raw output, parsed call, response and world changes."""
    step = get_object_or_404(Step.objects.defer("token_bytes", "logprob_bytes"), episode_id=pk, index=index)
    if request.GET.get("prompt"):
        episode = get_object_or_404(Episode.objects.only("id", "instruction"), pk=pk)
        return render(
            request,
            "experiments/partials/episode_prompt.html",
            {"episode": episode, "turns": replay.prompt_turns(episode, index)},
        )
    episode = Episode.objects.only("id", "world_slug", "instruction").get(pk=pk)
    return render(
        request,
        "experiments/partials/episode_step.html",
        {
            "detail": replay.step_detail(step),
            "episode_id": pk,
            "world_slug": episode.world_slug,
            "seen": replay.observation_before(episode, step.index),
        },
    )


@require_GET
def episode_timeline(request, pk):
    """The verifier timeline (htmx fragment): the recorded calls replayed in a fresh world and
    verified after each step; computed on first request, then read from EpisodeReplay."""
    episode = get_object_or_404(Episode.objects.select_related("task"), pk=pk)
    data = replay.timeline(episode)
    return render(
        request,
        "experiments/partials/episode_timeline.html",
        {"episode": episode, "data": data, "reproduces": replay.reproduces(episode, data)},
    )


@require_POST
def episode_rerun(request, pk):
    """Replay the recorded calls in a fresh world from the same seed and show whether the verdict
    reproduces; with ``edit_index`` (and method, path, body), that step's call is replaced first."""
    if not request.user.has_perm(REVIEW_EPISODE):
        raise PermissionDenied("Only reviewers and operators may re-run episodes.")
    episode = get_object_or_404(Episode.objects.select_related("task"), pk=pk)
    edit, error = None, ""
    if (index := _int(request.POST.get("edit_index"))) is not None:
        body_text = request.POST.get("edit_body", "").strip()
        try:
            body = json.loads(body_text) if body_text else None
        except json.JSONDecodeError as err:
            error = f"the body is not JSON: {err}"
        else:
            edit = replay.Edit(
                index=index,
                method=(request.POST.get("edit_method") or "GET").upper()[:10],
                path=request.POST.get("edit_path") or "/",
                body=body,
            )
    data = replay.replay_episode(episode, edit=edit).to_dict() if not error else {"error": error}
    recorded = {c["name"]: c for c in episode.checks}
    rows = [
        {"name": c["name"], "replayed": c, "recorded": recorded.get(c["name"])}
        for c in (data.get("verdict") or {}).get("checks", [])
    ]
    return render(
        request,
        "experiments/partials/episode_rerun.html",
        {"episode": episode, "data": data, "rows": rows, "reproduces": replay.reproduces(episode, data)},
        status=400 if error else 200,
    )


@require_GET
def episode_compare(request):
    """Two episodes of one task side by side, their steps aligned on their calls, the first
    difference highlighted, and how their final worlds differ."""
    a_id, b_id = _int(request.GET.get("a")), _int(request.GET.get("b"))
    if a_id is None or b_id is None:
        raise Http404("compare needs two episodes: ?a=<id>&b=<id>")
    a, b = _episode(a_id), _episode(b_id)
    if a.task_id != b.task_id:
        return render(
            request, "experiments/episode_compare.html", _context(a=a, b=b, other_task=True), status=400
        )
    rows, divergence = replay.align(replay.step_summaries(a.pk), replay.step_summaries(b.pk))
    return render(
        request,
        "experiments/episode_compare.html",
        _context(a=a, b=b, rows=rows, divergence=divergence, world=replay.world_difference(a.pk, b.pk)),
    )


@require_GET
def episodes_export(request, fmt):
    """The reviewed episodes among the browser's filters (all of them with ``all=1``) as JSONL
    (a chat transcript, the calls, the checks and the review per line, usable as SFT data) or CSV."""
    if fmt not in ("jsonl", "csv"):
        raise Http404("export as .jsonl or .csv")
    filters = replay.clean_filters(request.GET)
    exported = review.export_episodes(filters, reviewed_only=request.GET.get("all") != "1")
    if fmt == "jsonl":
        lines = review.jsonl_lines(review.export_record(*row) for row in exported)
        content_type = "application/x-ndjson; charset=utf-8"
    else:
        lines = review.csv_lines(review.csv_row(*row) for row in exported)
        content_type = "text/csv; charset=utf-8"
    response = StreamingHttpResponse(lines, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="episodes.{fmt}"'
    return response


urlpatterns = [
    path("episodes/", episodes_index, name="episodes"),
    path("episodes/compare/", episode_compare, name="episode-compare"),
    path("episodes/export.<str:fmt>", episodes_export, name="episodes-export"),
    path("episodes/<int:pk>/", episode_detail, name="episode"),
    path("episodes/<int:pk>/steps/<int:index>/", episode_step, name="episode-step"),
    path("episodes/<int:pk>/timeline/", episode_timeline, name="episode-timeline"),
    path("episodes/<int:pk>/rerun/", episode_rerun, name="episode-rerun"),
]
