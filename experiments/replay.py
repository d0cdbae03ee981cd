"""Reading and replaying episodes: the episodes browser's filters and keyset pages, an episode's
step list and step details, the verifier timeline and the re-run (an episode's recorded calls
played again in a fresh world from its task's seed and setup), and the aligned comparison of two
episodes of one task.

Everything here reads, except ``replay_episode``, which forks a world, plays the calls in it and
deletes it again, and ``timeline``, which keeps the replay in EpisodeReplay so an episode's page
replays it only once.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from itertools import zip_longest

from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from experiments.models import Episode, EpisodeReplay, Review, Step

PAGE_SIZE = 50
BODY_CHARS = 20_000  # a body shown on the page is cut after this many characters
SORTS = {
    "-id": ("-id",),
    "id": ("id",),
    "reward": ("reward", "id"),
    "-reward": ("-reward", "-id"),
}
SORT_LABELS = {"-id": "newest", "id": "oldest", "reward": "reward ↑", "-reward": "reward ↓"}
FILTER_NAMES = (
    "experiment",
    "iteration",
    "min_iteration",
    "suite",
    "task",
    "split",
    "success",
    "min_reward",
    "max_reward",
    "label",
    "review_status",
    "q",
    "sort",
)
# Trace checks that cannot pass again once they failed: the task can no longer pass after them.
STICKY_CHECKS = {"not_called", "max_calls", "no_errors"}


# --- The episodes browser -------------------------------------------------------------------------


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def clean_filters(params) -> dict:
    """The browser's query parameters that are set, as strings (what a saved queue keeps)."""
    out = {}
    for name in FILTER_NAMES:
        value = (params.get(name) or "").strip()
        if value:
            out[name] = value
    if out.get("sort") not in SORTS:
        out.pop("sort", None)
    return out


def filtered_episodes(filters: dict):
    """Episodes matching the browser's filters (see FILTER_NAMES), unordered. Unknown or
    malformed values are ignored rather than refused: a filter is a query, not a form."""
    episodes = Episode.objects.all()
    if (experiment := _int(filters.get("experiment"))) is not None:
        # A range of one, not an equality: see _ordering.
        episodes = episodes.filter(experiment_id__gte=experiment, experiment_id__lte=experiment)
        if (iteration := _int(filters.get("iteration"))) is not None:
            episodes = episodes.filter(iteration__experiment_id=experiment, iteration__index=iteration)
    elif (iteration := _int(filters.get("iteration"))) is not None:
        episodes = episodes.filter(iteration__index=iteration)
    if (first := _int(filters.get("min_iteration"))) is not None:
        episodes = episodes.filter(iteration__index__gte=first)
    if suite := filters.get("suite"):
        episodes = episodes.filter(experiment__suite__name=suite)
    if (task := _int(filters.get("task"))) is not None:
        episodes = episodes.filter(task_id=task)
    if filters.get("split") in (Episode.TRAIN, Episode.TEST):
        episodes = episodes.filter(split=filters["split"])
    if filters.get("success") in ("1", "0"):
        episodes = episodes.filter(success=filters["success"] == "1")
    if (low := _float(filters.get("min_reward"))) is not None:
        episodes = episodes.filter(reward__gte=low)
    if (high := _float(filters.get("max_reward"))) is not None:
        episodes = episodes.filter(reward__lte=high)
    if label := filters.get("label"):
        episodes = episodes.filter(review__label=label)
    status = filters.get("review_status")
    if status == "unreviewed":  # an anti-join: PostgreSQL estimates it well, unlike an OR over a LEFT JOIN
        episodes = episodes.filter(~Exists(Review.objects.filter(episode=OuterRef("pk")).exclude(verdict="")))
    elif status == "flagged":
        episodes = episodes.filter(review__isnull=False).exclude(review__flags=[])
    elif status:
        episodes = episodes.filter(review__status=status)
    if q := (filters.get("q") or "").strip():
        # Raw outputs and calls only, as one EXISTS (no OR around it), so that PostgreSQL can
        # either walk the episodes in order or start from the trigram indexes (migration 0006).
        matching_steps = (
            Step.objects.filter(episode=OuterRef("pk"))
            .annotate(call_text=Cast("request", TextField()))
            .filter(Q(raw_output__icontains=q) | Q(call_text__icontains=q))
        )
        episodes = episodes.filter(Exists(matching_steps))
    return episodes


def encode_cursor(episode, sort) -> str:
    return f"{episode.reward!r}~{episode.pk}" if "reward" in sort else str(episode.pk)


def _after(episodes, sort, cursor):
    """Rows after the cursor of the last row shown, in the sort's order (keyset: no OFFSET)."""
    value, _, pk = (cursor or "").rpartition("~")
    pk = _int(pk)
    if pk is None:
        return episodes
    if "reward" not in sort:
        return episodes.filter(pk__lt=pk) if sort == "-id" else episodes.filter(pk__gt=pk)
    reward = _float(value)
    if reward is None:
        return episodes
    if sort == "reward":
        return episodes.filter(Q(reward__gt=reward) | Q(reward=reward, pk__gt=pk))
    return episodes.filter(Q(reward__lt=reward) | Q(reward=reward, pk__lt=pk))


def _ordering(filters, sort):
    """The ORDER BY of a sort; within one experiment, led by the experiment, so that PostgreSQL
    reads the (experiment, id) and (experiment, reward, id) indexes in order. (With a plain
    ``experiment_id = x`` it drops the constant from the order and walks the primary key past
    every later experiment's episodes, which its LIMIT estimate assumes it need not.)"""
    if not filters.get("experiment"):
        return SORTS[sort]
    return ("-experiment_id" if sort.startswith("-") else "experiment_id", *SORTS[sort])


def browser_page(filters: dict, cursor: str = "", size: int | None = None):
    """(rows, next cursor or "") of the browser: one query, episodes with their experiment,
    iteration, task and review."""
    size = size or PAGE_SIZE
    sort = filters.get("sort") or "-id"
    episodes = _after(filtered_episodes(filters), sort, cursor)
    rows = list(
        episodes.select_related("experiment", "iteration", "task", "review")
        .only(
            "id",
            "reward",
            "success",
            "split",
            "turns",
            "variant_index",
            "sample_index",
            "failure_category",
            "finished",
            "experiment__id",
            "experiment__name",
            "iteration__id",
            "iteration__index",
            "task__id",
            "task__task_id",
            "review__id",
            "review__verdict",
            "review__label",
            "review__status",
            "review__flags",
        )
        .order_by(*_ordering(filters, sort))[: size + 1]
    )
    more = len(rows) > size
    rows = rows[:size]
    return rows, encode_cursor(rows[-1], sort) if more else ""


# --- One episode ----------------------------------------------------------------------------------


def step_summaries(episode_id):
    """The step list of an episode without the heavy columns: index, method, path, status, and
    whether the output could not be parsed or ended the episode (one query, whatever the size)."""
    return list(
        Step.objects.filter(episode_id=episode_id)
        .order_by("index")
        .values("index", "parse_error")
        .annotate(
            method=KT("request__method"),
            path=KT("request__path"),
            status=KT("response__status"),
            final=KT("action__final"),
        )
    )


def pretty(value, limit=BODY_CHARS) -> str:
    """JSON as indented text, cut after ``limit`` characters; text stays text."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters)"


def shown_value(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def step_detail(step) -> dict:
    """What the step panel shows of one Step: its parsed call, response and world changes as text."""
    request = step.request or {}
    response = step.response or {}
    return {
        "step": step,
        "method": request.get("method", ""),
        "path": request.get("path", ""),
        "query": pretty(request.get("query")) if request.get("query") else "",
        "body": pretty(request.get("body")),
        "status": response.get("status"),
        "response_body": pretty(response.get("body")),
        "final": (step.action or {}).get("final") if isinstance(step.action, dict) else None,
        "changes": [
            {
                **change,
                "before_text": shown_value(change.get("before")),
                "after_text": shown_value(change.get("after")),
            }
            for change in step.world_changes or []
        ],
    }


def observation_before(episode, index) -> str:
    """What the model acted on at step ``index``: the previous step's observation, or the
    instruction for the first step."""
    earlier = Step.objects.filter(episode=episode, index__lt=index).order_by("-index")
    seen = earlier.values_list("observation", flat=True).first()
    return episode.instruction if seen is None else seen


def prompt_turns(episode, index):
    """What the model had read before step ``index``: the instruction, then each earlier output
    and the observation it got back."""
    earlier = Step.objects.filter(episode=episode, index__lt=index).order_by("index")
    return [
        (s.index, s.raw_output, s.observation) for s in earlier.only("index", "raw_output", "observation")
    ]


# --- Replaying an episode -------------------------------------------------------------------------


class ReplayUnavailable(RuntimeError):
    """The episode's variant cannot be drawn or set up again (e.g. its task changed)."""


def episode_variant(episode):
    """The variant the episode ran, drawn again (variants are deterministic)."""
    from experiments.suites import variants
    from experiments.variants import VariantError
    from simulator.seeding import load_seed

    spec = episode.task.task_spec()
    try:
        drawn = variants(spec, episode.split, world=load_seed(spec.seed), count=episode.variant_index + 1)
    except (VariantError, ValueError, KeyError) as err:
        raise ReplayUnavailable(f"the variant cannot be drawn again: {err}") from err
    if len(drawn) <= episode.variant_index:
        raise ReplayUnavailable(f"task {spec.id} has no {episode.split} variant {episode.variant_index}")
    return drawn[episode.variant_index]


@dataclass
class Edit:
    """A "what if": step ``index``'s call replaced by this one before replaying."""

    index: int
    method: str
    path: str
    body: object = None


@dataclass
class Replay:
    checks: list = field(default_factory=list)  # names, in the verifier's order
    rows: list = field(default_factory=list)  # per step: index, status, passed, reward, success
    verdict: dict = field(default_factory=dict)  # the final verdict (checks, breakdown, reward)
    point_of_no_return: int | None = None
    edit: dict | None = None
    error: str = ""

    def to_dict(self):
        return {
            "checks": self.checks,
            "rows": self.rows,
            "verdict": self.verdict,
            "point_of_no_return": self.point_of_no_return,
            "edit": self.edit,
            "error": self.error,
        }


def replay_episode(episode, *, edit: Edit | None = None) -> Replay:
    """Play the episode's recorded actions against a fresh world forked from its task's seed,
    after the variant's setup, verifying after every step: which checks hold, the partial reward
    and whether it would pass if it stopped there. The world is deleted afterwards."""
    # Not experiments.environment.discard_worlds: that module imports the trainer (torch), which
    # would cost a web process seconds on its first replay.
    from experiments.runner import SetupError, prepare
    from experiments.verifiers import verify
    from simulator.client import SimClient
    from simulator.forking import delete_worlds
    from simulator.models import World

    try:
        variant = episode_variant(episode)
        prepared = prepare(variant)
    except (ReplayUnavailable, SetupError) as err:
        return Replay(error=str(err))
    replay = Replay(edit=edit.__dict__ if edit else None)
    format_errors, final_answer = 0, None
    steps = (
        Step.objects.filter(episode=episode)
        .order_by("index")
        .only("index", "action", "parse_error", "request")
    )

    def verdict_now():
        return verify(
            prepared.world,
            prepared.variant,
            final_answer=final_answer,
            format_errors=format_errors,
            after_seq=prepared.after_seq,
        )

    try:
        verdict = None
        for step in steps:
            request, status = step.request, None
            if edit is not None and edit.index == step.index:
                request = {"method": edit.method, "path": edit.path, "query": {}, "body": edit.body}
            if request:
                response = SimClient(prepared.world, prepared.user).request(
                    request["method"],
                    request["path"],
                    params=request.get("query") or None,
                    json=request.get("body"),
                )
                status = response.status_code
            elif isinstance(step.action, dict) and "final" in step.action:
                final_answer = step.action["final"]
            elif step.parse_error or step.action is None:
                format_errors += 1
            verdict = verdict_now()
            replay.rows.append(
                {
                    "index": step.index,
                    "status": status,
                    "passed": [c.name for c in verdict.checks if c.passed],
                    "reward": verdict.reward,
                    "success": verdict.success,
                }
            )
        verdict = verdict or verdict_now()
        replay.checks = [c.name for c in verdict.checks]
        replay.verdict = verdict.to_dict()
        replay.point_of_no_return = point_of_no_return(replay.rows, verdict.checks)
    finally:
        delete_worlds(World.objects.filter(pk=prepared.world.pk))
    return replay


def point_of_no_return(rows, checks):
    """The first step after which the task could no longer pass: a required trace check that
    cannot recover (a forbidden call made, the call budget spent, an error answered) failed there
    and stayed failed to the end. None when nothing of the kind happened."""
    sticky = [c.name for c in checks if c.required and c.type in STICKY_CHECKS]
    earliest = None
    for name in sticky:
        broken = None
        for row in rows:
            if name in row["passed"]:
                broken = None
            elif broken is None:
                broken = row["index"]
        if broken is not None and (earliest is None or broken < earliest):
            earliest = broken
    return earliest


def timeline(episode) -> dict:
    """The episode's replay, from the cache or computed now and cached."""
    cached = EpisodeReplay.objects.filter(episode=episode).values_list("data", flat=True).first()
    if cached is not None:
        return cached
    data = replay_episode(episode).to_dict()
    if not data["error"]:
        EpisodeReplay.objects.update_or_create(episode=episode, defaults={"data": data})
    return data


def reproduces(episode, replayed: dict) -> bool:
    """Whether a replay's verdict is the recorded one: same success, same reward to 1e-6."""
    verdict = replayed.get("verdict") or {}
    if not verdict:
        return False
    return verdict["success"] == episode.success and abs(verdict["reward"] - episode.reward) < 1e-6


# --- Aligned comparison ---------------------------------------------------------------------------


def _call_key(summary):
    if summary["method"]:
        return (summary["method"], summary["path"])
    if summary["final"] is not None:
        return ("final",)
    return ("format error",)


def align(a_steps, b_steps):
    """Rows pairing the steps of two episodes on their calls ((method, path); a final answer and
    a format error each count as one kind of call), with difflib; and the index of the first row
    where they differ (None when they never do)."""
    a_keys, b_keys = [_call_key(s) for s in a_steps], [_call_key(s) for s in b_steps]
    rows = []
    matcher = difflib.SequenceMatcher(a=a_keys, b=b_keys, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        for a, b in zip_longest(a_steps[a1:a2], b_steps[b1:b2]):
            rows.append({"a": a, "b": b, "same": op == "equal"})
    divergence = next((n for n, row in enumerate(rows) if not row["same"]), None)
    return rows, divergence


def final_world(episode_id) -> dict:
    """{(object_type, object_ref, field): value} after the episode, folded from its steps'
    world changes (a deleted record: field None, value "deleted")."""
    state = {}
    steps = Step.objects.filter(episode_id=episode_id).exclude(world_changes=[]).order_by("index")
    for changes in steps.values_list("world_changes", flat=True):
        for change in changes:
            key = (change.get("object_type", ""), change.get("object_ref", ""), change.get("field") or "")
            state[key] = "deleted" if change.get("action") == "delete" else change.get("after")
    return state


def world_difference(a_id, b_id):
    """Rows (object_type, object_ref, field, value in A, value in B) where the two episodes'
    final worlds differ, as far as their own calls changed them."""
    a, b = final_world(a_id), final_world(b_id)
    rows = []
    for key in sorted(set(a) | set(b), key=lambda k: tuple(map(str, k))):
        if a.get(key, "∅") != b.get(key, "∅"):
            rows.append(
                {
                    "object_type": key[0],
                    "object_ref": key[1],
                    "field": key[2],
                    "a": shown_value(a[key]) if key in a else "(unchanged)",
                    "b": shown_value(b[key]) if key in b else "(unchanged)",
                }
            )
    return rows
