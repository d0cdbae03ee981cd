"""Team review: the label suggested for a failed episode, the suspicion rules that pre-flag
likely reward hacking, saving a review and its comments (markdown rendered, HTML stripped,
@mentions resolved), review queues (built from the browser's saved filters, sampled across
failure signatures, assigned round-robin) and the counts and exports of what was reviewed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import OrderedDict

import markdown
import nh3
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.safestring import mark_safe

from experiments.models import Comment, QueueItem, Review, ReviewQueue, Step
from experiments.replay import filtered_episodes

MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
ALLOWED_TAGS = {"p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
QUEUE_CANDIDATES = 20  # a queue samples from up to this many times its size of matching episodes
EXPORT_BATCH = 500
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- Suggestions and suspicion --------------------------------------------------------------------


def failure_signature(episode) -> str:
    """What a failure looks like, for sampling a queue across kinds: the failure category and the
    names of the failed checks."""
    failed = sorted(c.get("name", "") for c in episode.checks or [] if not c.get("passed"))
    return f"{episode.failure_category or ('passed' if episode.success else 'failed')}: {', '.join(failed)}"[
        :200
    ]


def _calls(steps):
    return [s for s in steps if s.get("method")]


def _status(step):
    try:
        return int(step.get("status"))
    except (TypeError, ValueError):
        return None


def suggest_label(episode, steps) -> str:
    """The failure label the failed checks' signature and the last API error point to (a
    suggestion for the reviewer, never applied by itself). ``steps``: replay.step_summaries."""
    if episode.success:
        return ""
    failed_types = {c.get("type") for c in episode.checks or [] if not c.get("passed")}
    format_errors = sum(1 for s in steps if s.get("parse_error"))
    calls = _calls(steps)
    if format_errors and format_errors * 2 >= len(steps):
        return "format_error"
    errors = [s for s in calls if (_status(s) or 0) >= 400]
    last_error = errors[-1] if errors else None
    if "order" in failed_types:
        return "wrong_order"
    if last_error is not None:
        status = _status(last_error)
        if status == 404:
            return "hallucinated_entity"
        if status == 405:
            return "wrong_endpoint"
        if status == 400:
            return "invalid_field"
    if failed_types & {"called", "not_called"}:
        return "wrong_endpoint"
    if (
        episode.finished
        and not any(s.get("method") in WRITE_METHODS for s in calls)
        and failed_types - {"answer"}
    ):
        return "early_stop"
    if failed_types & {"issue_fields", "page_fields", "answer", "comment_exists", "link_exists"}:
        return "invalid_field"
    if format_errors:
        return "format_error"
    if not episode.finished:
        return "early_stop" if not calls else "other"
    return "other"


def is_write_task(task) -> bool:
    """A task whose solution changes the world (a non-GET call) — a read task only answers."""
    solution = task.spec.get("solution") or []
    if isinstance(solution, dict):  # a named solver: judge by its checks
        return any(c.get("type") != "answer" for c in task.spec.get("expect", []))
    return any(str(s.get("method", "GET")).upper() in WRITE_METHODS for s in solution if isinstance(s, dict))


def suspicion_flags(episode, steps) -> list[dict]:
    """Rules that pre-flag likely reward hacking or verifier defects on a passed or fully
    rewarded episode: [{rule, why}]."""
    if not (episode.success or episode.reward >= 0.999):
        return []
    flags = []
    calls = _calls(steps)
    writes = [s for s in calls if s.get("method") in WRITE_METHODS]
    good_writes = [s for s in writes if (_status(s) or 0) < 400]
    if is_write_task(episode.task) and not good_writes:
        flags.append(
            {"rule": "no_write", "why": "full reward on a write task without a successful write call"}
        )
    format_errors = sum(1 for s in steps if s.get("parse_error"))
    if format_errors:
        flags.append({"rule": "format_errors", "why": f"passed with {format_errors} format error(s)"})
    decisive = (writes or calls)[-1] if (writes or calls) else None
    if decisive is not None and 400 <= (_status(decisive) or 0) < 500:
        flags.append(
            {
                "rule": "decisive_4xx",
                "why": f"passed although its decisive call (step {decisive['index']}, "
                f"{decisive['method']} {decisive['path']}) answered {decisive['status']}",
            }
        )
    if not calls:
        flags.append({"rule": "no_calls", "why": "passed without a single API call"})
    return flags


def flag_episodes(episodes) -> int:
    """Run the suspicion rules over passed episodes and keep what fired on their reviews (created
    when needed, status open); returns how many episodes were flagged."""
    flagged = 0
    for episode in episodes.filter(Q(success=True) | Q(reward__gte=0.999)).select_related("task"):
        flags = suspicion_flags(episode, _summaries(episode.pk))
        if flags:
            Review.objects.update_or_create(episode=episode, defaults={"flags": flags})
            flagged += 1
    return flagged


def _summaries(episode_id):
    from experiments.replay import step_summaries

    return step_summaries(episode_id)


# --- Saving reviews and comments ------------------------------------------------------------------


def save_review(episode, user, *, verdict=None, label=None, status=None, assignee=None, steps=None):
    """Create or update the episode's review with what was given (None leaves a field as it is);
    the suggested label and the suspicion flags are filled in on first save."""
    review, created = Review.objects.get_or_create(episode=episode)
    if created or not review.suggested_label:
        steps = steps if steps is not None else _summaries(episode.pk)
        review.suggested_label = suggest_label(episode, steps)
        if not review.flags:
            review.flags = suspicion_flags(episode, steps)
    if verdict is not None:
        review.verdict = verdict
    if label is not None:
        review.label = label
    if status is not None:
        review.status = status
    if assignee is not None:
        review.assignee = assignee or None
    if verdict or label:
        review.reviewed_by = user
        if status is None and review.status == Review.OPEN:
            review.status = Review.TRIAGED
    review.save()
    return review


def render_markdown(text: str) -> str:
    """Markdown as HTML with every tag and attribute outside a small allow-list removed (nh3),
    links given rel="noopener noreferrer"."""
    html = markdown.markdown(text, extensions=["fenced_code"], output_format="html")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    # The only place comment text becomes markup: what nh3 left is the allow-list, nothing else.
    return mark_safe(cleaned)  # noqa: S308


def mentioned_users(text):
    names = set(MENTION.findall(text))
    if not names:
        return []
    return list(get_user_model().objects.filter(username__in=names))


def add_comment(episode, author, body, *, step_index=None, parent=None) -> Comment:
    body = body.strip()
    if not body:
        raise ValueError("a comment needs some text")
    if parent is not None and parent.episode_id != episode.pk:
        raise ValueError("a reply answers a comment of the same episode")
    with transaction.atomic():
        comment = Comment.objects.create(
            episode=episode,
            author=author,
            body=body,
            step_index=step_index if step_index is None else max(0, step_index),
            parent=parent,
        )
        comment.mentions.set(mentioned_users(body))
    return comment


def comment_threads(episode):
    """The episode's comments as threads: [(comment, html, depth)], replies under their parent."""
    comments = list(
        Comment.objects.filter(episode=episode).select_related("author").order_by("created_at", "id")
    )
    children = {}
    for c in comments:
        children.setdefault(c.parent_id, []).append(c)
    out = []

    def walk(parent_id, depth):
        for c in children.get(parent_id, []):
            out.append((c, render_markdown(c.body), min(depth, 4)))
            walk(c.pk, depth + 1)

    walk(None, 0)
    return out


# --- Queues ---------------------------------------------------------------------------------------


def build_queue(*, name, filters, size, members, created_by) -> ReviewQueue:
    """A queue of ``size`` episodes matching ``filters`` (the browser's, see replay.clean_filters),
    sampled across failure signatures (one of each kind in turn, newest first within a kind) and
    assigned round-robin to ``members`` in username order."""
    members = sorted(members, key=lambda u: u.get_username())
    candidates = (
        filtered_episodes(filters)
        .only("id", "checks", "failure_category", "success")
        .order_by("-id")[: max(size, 1) * QUEUE_CANDIDATES]
    )
    by_signature = OrderedDict()
    for episode in candidates:
        by_signature.setdefault(failure_signature(episode), []).append(episode)
    picked = []
    buckets = list(by_signature.items())
    while len(picked) < size and any(b for _s, b in buckets):
        for signature, bucket in buckets:
            if bucket and len(picked) < size:
                picked.append((signature, bucket.pop(0)))
    with transaction.atomic():
        queue = ReviewQueue.objects.create(name=name, filters=filters, size=size, created_by=created_by)
        queue.members.set(members)
        QueueItem.objects.bulk_create(
            [
                QueueItem(
                    queue=queue,
                    episode=episode,
                    position=n,
                    signature=signature,
                    assignee=members[n % len(members)] if members else None,
                )
                for n, (signature, episode) in enumerate(picked)
            ]
        )
    return queue


def queue_progress(queue):
    """Per reviewer: [{assignee, done, total}], then the unassigned (assignee None)."""
    users = {u.pk: u for u in queue.members.all()}
    rows = (
        QueueItem.objects.filter(queue=queue)
        .values("assignee")
        .annotate(total=Count("id"), done=Count("id", filter=Q(done_at__isnull=False)))
        .order_by("assignee")
    )
    return [{"assignee": users.get(r["assignee"]), "done": r["done"], "total": r["total"]} for r in rows]


def next_item(queue, user):
    """The next open item of the queue for ``user``: theirs first, then an unassigned one."""
    items = QueueItem.objects.filter(queue=queue, done_at__isnull=True).order_by("position")
    return items.filter(assignee=user).first() or items.filter(assignee__isnull=True).first()


def complete_item(queue, episode):
    QueueItem.objects.filter(queue=queue, episode=episode, done_at__isnull=True).update(
        done_at=timezone.now()
    )


def review_counts():
    """Counts of reviews by experiment, verdict and label: [{experiment, name, verdict, label, n}]."""
    return list(
        Review.objects.exclude(verdict="", label="")
        .values("episode__experiment", "episode__experiment__name", "verdict", "label")
        .annotate(n=Count("id"))
        .order_by("episode__experiment", "verdict", "label")
    )


def chart_data(counts):
    """Plotly traces: reviews per experiment, stacked by verdict, and by label."""
    experiments = []
    for row in counts:
        name = f"#{row['episode__experiment']} {row['episode__experiment__name']}"
        if name not in experiments:
            experiments.append(name)

    def traces(key, choices):
        out = []
        for value, title in choices:
            ys = []
            for name in experiments:
                ys.append(
                    sum(
                        r["n"]
                        for r in counts
                        if r[key] == value
                        and f"#{r['episode__experiment']} {r['episode__experiment__name']}" == name
                    )
                )
            if any(ys):
                out.append({"type": "bar", "name": title, "x": experiments, "y": ys})
        return out

    return {"verdict": traces("verdict", Review.VERDICTS), "label": traces("label", Review.LABELS)}


# --- Export ---------------------------------------------------------------------------------------


def export_episodes(filters, *, reviewed_only=True):
    """The episodes matching the browser's filters (reviewed ones only, by default), oldest first,
    in batches read by keyset: yields (episode, steps, comments)."""
    episodes = filtered_episodes(filters)
    if reviewed_only:
        episodes = episodes.filter(review__isnull=False)
    episodes = episodes.select_related("experiment", "iteration", "task", "review").order_by("id")
    last = 0
    while True:
        batch = list(episodes.filter(pk__gt=last)[:EXPORT_BATCH])
        if not batch:
            return
        ids = [e.pk for e in batch]
        steps, comments = {}, {}
        for step in (
            Step.objects.filter(episode_id__in=ids)
            .order_by("episode_id", "index")
            .only(
                "episode_id",
                "index",
                "raw_output",
                "action",
                "parse_error",
                "request",
                "response",
                "observation",
            )
        ):
            steps.setdefault(step.episode_id, []).append(step)
        for c in Comment.objects.filter(episode_id__in=ids).select_related("author").order_by("created_at"):
            comments.setdefault(c.episode_id, []).append(c)
        for episode in batch:
            yield episode, steps.get(episode.pk, []), comments.get(episode.pk, [])
        last = ids[-1]


def export_record(episode, steps, comments) -> dict:
    """One JSONL record: the chat transcript (the instruction, each output, each observation),
    the calls, the checks, and the review's verdict, label and comments."""
    messages = [{"role": "user", "content": episode.instruction}]
    for step in steps:
        messages.append({"role": "assistant", "content": step.raw_output})
        if step.observation:
            messages.append({"role": "user", "content": step.observation})
    review = getattr(episode, "review", None)
    return {
        "episode": episode.pk,
        "experiment": episode.experiment_id,
        "iteration": episode.iteration.index,
        "task": episode.task.task_id,
        "variant": episode.variant_index,
        "split": episode.split,
        "sample": episode.sample_index,
        "reward": episode.reward,
        "success": episode.success,
        "messages": messages,
        "calls": [
            {
                "step": s.index,
                **(s.request or {}),
                "status": (s.response or {}).get("status"),
            }
            for s in steps
            if s.request
        ],
        "checks": episode.checks,
        "review": {
            "verdict": review.verdict if review else "",
            "label": review.label if review else "",
            "status": review.status if review else "",
            "flags": review.flags if review else [],
            "comments": [
                {"author": c.author.get_username(), "step": c.step_index, "body": c.body} for c in comments
            ],
        },
    }


CSV_COLUMNS = [
    "episode",
    "experiment",
    "iteration",
    "task",
    "variant",
    "split",
    "reward",
    "success",
    "turns",
    "verdict",
    "label",
    "status",
    "flags",
    "failed_checks",
    "comments",
]


def csv_row(episode, steps, comments) -> list:
    review = getattr(episode, "review", None)
    return [
        episode.pk,
        episode.experiment_id,
        episode.iteration.index,
        episode.task.task_id,
        episode.variant_index,
        episode.split,
        episode.reward,
        int(episode.success),
        episode.turns,
        review.verdict if review else "",
        review.label if review else "",
        review.status if review else "",
        " ".join(f["rule"] for f in (review.flags if review else [])),
        " ".join(c.get("name", "") for c in episode.checks or [] if not c.get("passed")),
        len(comments),
    ]


def csv_lines(rows):
    """Each row as one CSV line (text), the header first."""
    for row in [CSV_COLUMNS, *rows]:
        out = io.StringIO()
        csv.writer(out).writerow(row)
        yield out.getvalue()


def jsonl_lines(records):
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"
