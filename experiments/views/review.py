"""Team review: saving a review and comments on an episode, the review index (queues, counts by
verdict and label per experiment as a chart) and the queues.

Every change is a POST with the CSRF token and needs the ``experiments.review_episode``
permission (reviewers and operators); viewers only read. Comments are markdown rendered with
their HTML stripped (experiments.review.render_markdown).
"""

from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from experiments import replay, review
from experiments.models import Comment, Episode, QueueItem, Review, ReviewQueue
from experiments.roles import REVIEW_EPISODE

QUEUE_ITEMS_SHOWN = 200
MENTIONS_SHOWN = 20


def _require_reviewer(request):
    if not request.user.has_perm(REVIEW_EPISODE):
        raise PermissionDenied("Only reviewers and operators may review episodes.")


def _choice(value, choices):
    """The posted value when it is one of the choices (or "" to clear), None when not posted."""
    if value is None:
        return None
    return value if value == "" or value in dict(choices) else None


def _episode_url(episode_id, queue=None, step=None):
    params = {k: v for k, v in (("queue", queue), ("step", step)) if v is not None}
    return reverse("episode", args=[episode_id]) + (f"?{urlencode(params)}" if params else "")


@require_POST
def episode_review(request, pk):
    """Set the verdict, label, status and assignee of an episode's review; with ``complete=1``
    inside a queue (``queue=<pk>``), mark its item done and go on to the next one."""
    _require_reviewer(request)
    episode = get_object_or_404(Episode.objects.select_related("task"), pk=pk)
    assignee = None
    if "assignee" in request.POST:
        name = request.POST["assignee"].strip()
        assignee = get_user_model().objects.filter(username=name).first() if name else ""
        if name and assignee is None:
            return HttpResponseBadRequest(f"no user {name!r}")
    review.save_review(
        episode,
        request.user,
        verdict=_choice(request.POST.get("verdict"), Review.VERDICTS),
        label=_choice(request.POST.get("label"), Review.LABELS),
        status=_choice(request.POST.get("status"), Review.STATUSES),
        assignee=assignee,
    )
    queue_id = request.POST.get("queue", "")
    if queue_id.isdecimal():
        queue = get_object_or_404(ReviewQueue, pk=int(queue_id))
        if request.POST.get("complete") == "1":
            review.complete_item(queue, episode)
            following = review.next_item(queue, request.user)
            if following is None:
                return redirect("review-queue", pk=queue.pk)
            return redirect(_episode_url(following.episode_id, queue=queue.pk))
        return redirect(_episode_url(episode.pk, queue=queue.pk))
    return redirect(_episode_url(episode.pk))


@require_POST
def episode_comment(request, pk):
    """Add a comment (markdown, optionally anchored to a step and answering another comment)."""
    _require_reviewer(request)
    episode = get_object_or_404(Episode.objects.only("id"), pk=pk)
    parent = None
    if (parent_id := request.POST.get("parent", "")).isdecimal():
        parent = get_object_or_404(Comment, pk=int(parent_id), episode=episode)
    step = request.POST.get("step_index", "") if request.POST.get("anchor") else ""
    try:
        review.add_comment(
            episode,
            request.user,
            request.POST.get("body", ""),
            step_index=int(step) if step.isdecimal() else None,
            parent=parent,
        )
    except ValueError as err:
        return HttpResponseBadRequest(str(err))
    queue = request.POST.get("queue", "")
    return redirect(_episode_url(episode.pk, queue=queue if queue.isdecimal() else None) + "#comments")


@require_GET
def review_index(request):
    """Queues with their progress, the queues assigned to me, and counts of reviews by verdict
    and label per experiment (a chart)."""
    queues = list(
        ReviewQueue.objects.select_related("created_by")
        .annotate(total=Count("items"), done=Count("items", filter=Q(items__done_at__isnull=False)))
        .order_by("-created_at")[:100]
    )
    counts = review.review_counts()
    open_reviews = Review.objects.filter(status=Review.OPEN).count()
    mentions = list(
        Comment.objects.filter(mentions=request.user)
        .select_related("author")
        .only("id", "episode_id", "step_index", "body", "created_at", "author__username")
        .order_by("-created_at")[:MENTIONS_SHOWN]
    )
    return render(
        request,
        "experiments/review.html",
        {
            "section": "review",
            "queues": queues,
            "counts": counts,
            "chart": review.chart_data(counts),
            "open_reviews": open_reviews,
            "mentions": mentions,
            "can_review": request.user.has_perm(REVIEW_EPISODE),
            "verdict_names": dict(Review.VERDICTS),
            "label_names": dict(Review.LABELS),
        },
    )


@require_POST
def review_queue_new(request):
    """A queue from the browser's filters (posted as ``f_<name>``), its members the reviewers
    posted, or the creator alone."""
    _require_reviewer(request)
    filters = replay.clean_filters({k[2:]: v for k, v in request.POST.items() if k.startswith("f_")})
    name = request.POST.get("name", "").strip()[:120] or "Review queue"
    try:
        size = min(max(int(request.POST.get("size", "20")), 1), 500)
    except ValueError:
        size = 20
    usernames = request.POST.getlist("members")
    members = list(get_user_model().objects.filter(username__in=usernames)) if usernames else [request.user]
    queue = review.build_queue(
        name=name, filters=filters, size=size, members=members, created_by=request.user
    )
    return redirect("review-queue", pk=queue.pk)


@require_GET
def review_queue(request, pk):
    """A queue: its filters, per-reviewer progress and its items in order."""
    queue = get_object_or_404(ReviewQueue.objects.select_related("created_by"), pk=pk)
    items = list(
        QueueItem.objects.filter(queue=queue)
        .select_related("episode__task", "episode__review", "assignee")
        .only(
            "id",
            "position",
            "signature",
            "done_at",
            "assignee__username",
            "episode__id",
            "episode__reward",
            "episode__success",
            "episode__task__task_id",
            "episode__review__verdict",
            "episode__review__label",
            "episode__review__status",
        )
        .order_by("position")[:QUEUE_ITEMS_SHOWN]
    )
    return render(
        request,
        "experiments/review_queue.html",
        {
            "section": "review",
            "queue": queue,
            "items": items,
            "progress": review.queue_progress(queue),
            "filters_query": urlencode(queue.filters),
            "can_review": request.user.has_perm(REVIEW_EPISODE),
        },
    )


@require_GET
def review_queue_next(request, pk):
    """Go to my next open item of the queue (the queue page when none is left)."""
    queue = get_object_or_404(ReviewQueue, pk=pk)
    item = review.next_item(queue, request.user)
    if item is None:
        return redirect("review-queue", pk=queue.pk)
    return redirect(_episode_url(item.episode_id, queue=queue.pk))


urlpatterns = [
    path("review/", review_index, name="review"),
    path("review/queues/new/", review_queue_new, name="review-queue-new"),
    path("review/queues/<int:pk>/", review_queue, name="review-queue"),
    path("review/queues/<int:pk>/next/", review_queue_next, name="review-queue-next"),
    path("episodes/<int:pk>/review/", episode_review, name="episode-review"),
    path("episodes/<int:pk>/comments/", episode_comment, name="episode-comment"),
]
