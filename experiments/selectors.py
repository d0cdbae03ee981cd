"""Functions that read the experiments app's data for pages and commands."""

import json
import math
import statistics
from dataclasses import dataclass

from django.db import connections
from django.db.models import (
    Avg,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from experiments.models import Task, TaskSuite


@dataclass
class SuiteRow:
    suite: TaskSuite
    tasks: int
    families: int
    train: int
    test: int


def task_variant_counts(task):
    """(train, test) variants of a stored Task: a held-out family has no train variants."""
    counts = task.spec.get("variants") or {}
    train = 0 if task.family_heldout else int(counts.get("train", 0))
    return train, int(counts.get("test", 0))


def suite_rows():
    """Every suite with its number of tasks, families (scenarios) and train/test variants, in
    two queries whatever the number of suites and tasks."""
    tasks = Task.objects.only("id", "suite_id", "scenario", "spec", "split_rule")
    rows = []
    for suite in TaskSuite.objects.prefetch_related(Prefetch("tasks", queryset=tasks)).defer("source"):
        counts = [task_variant_counts(t) for t in suite.tasks.all()]
        rows.append(
            SuiteRow(
                suite=suite,
                tasks=len(counts),
                families=len({t.scenario for t in suite.tasks.all()}),
                train=sum(c[0] for c in counts),
                test=sum(c[1] for c in counts),
            )
        )
    return rows


# --- Experiment pages (experiments/views/experiments.py, bench/pages.py) ---------------------------
#
# Every function below runs a fixed number of queries whatever the size of the history: curves are
# aggregated in SQL per (split, iteration bucket, task) and never hold more than MAX_POINTS buckets.

MAX_POINTS = 1500  # points per line; longer runs are averaged over buckets of whole iterations
LIST_LIMIT = 100
LIST_SORTS = {
    "newest": ("-created_at",),
    "oldest": ("created_at",),
    "name": ("name", "-created_at"),
    "status": ("status", "-created_at"),
    "best": (F("best_heldout").desc(nulls_last=True), "-created_at"),
}
# The optimizer and throughput curves, as the train task records them (experiments.tasks._numbers).
TRAINING_METRICS = ("loss", "kl", "entropy", "clip_fraction", "grad_norm")
THROUGHPUT_METRICS = ("tokens_per_s", "generation_tokens_per_s", "train_tokens_per_s")
ZERO_VARIANCE_METRIC = "zero_variance_fraction"
TREND_WINDOW = 3  # observations of a task averaged to say how it does at its best and lately


def experiment_rows(filters=None, sort="newest"):
    """The newest experiments (at most LIST_LIMIT) with ``episodes_done`` and ``best_heldout``
    (the best held-out reward any evaluation recorded, None without one), filtered by the
    ``filters`` given (status, suite (pk), model, owner (pk), algorithm): one query."""
    from experiments.models import Episode, Experiment, MetricPoint

    best = MetricPoint.objects.filter(experiment=OuterRef("pk"), split="test", name="reward")
    best = best.order_by("-value")
    rows = Experiment.objects.select_related("suite", "owner").annotate(
        episodes_done=_rows_of_experiment(Episode),
        best_heldout=Subquery(best.values("value")[:1], output_field=FloatField()),
    )
    lookups = {"status": "status", "suite": "suite_id", "model": "model_name", "owner": "owner_id"}
    lookups["algorithm"] = "algorithm"
    for key, value in (filters or {}).items():
        if value not in (None, ""):
            rows = rows.filter(**{lookups[key]: value})
    return list(rows.defer("traceback").order_by(*LIST_SORTS.get(sort, LIST_SORTS["newest"]))[:LIST_LIMIT])


def experiment_filter_choices():
    """What the list's filters offer: the suites, models and owners of stored experiments (one
    query), as sorted ``[(value, label)]``."""
    from experiments.models import Experiment

    suites, models, owners = set(), set(), set()
    rows = Experiment.objects.order_by().values_list(
        "suite_id", "suite__name", "model_name", "owner_id", "owner__username"
    )
    for suite_id, suite_name, model, owner_id, owner_name in rows.distinct():
        suites.add((suite_id, suite_name))
        models.add((model, model))
        owners.add((owner_id, owner_name))
    by_label = lambda pairs: sorted(pairs, key=lambda p: p[1])  # noqa: E731
    return {"suite": by_label(suites), "model": by_label(models), "owner": by_label(owners)}


def bucket_size(iterations):
    """Iterations per point so that a curve of ``iterations`` has at most MAX_POINTS points."""
    return max(1, math.ceil((iterations or 1) / MAX_POINTS))


def _bucket(field, size):
    """SQL: the 0-based bucket of ``field`` (a 1-based iteration index), integer division on both
    SQLite and PostgreSQL."""
    return ExpressionWrapper((F(field) - 1) / Value(size), output_field=IntegerField())


def experiment_tasks(experiment):
    """``[{pk, task_id}]`` of the experiment's suite in the suite's order (one query)."""
    from experiments.models import Task

    tasks = Task.objects.filter(suite_id=experiment.suite_id).order_by("position")
    return list(tasks.values("pk", "task_id"))


def _fetch(queryset):
    """The rows of an aggregating ``values()`` queryset as dicts, read straight from the cursor:
    the database already returns ints and floats here, and Django's per-value converters cost
    more than the query on the curves' thousands of rows."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def iteration_indexes(experiment_ids):
    """``{iteration pk: index}`` of the experiments' iterations (one query)."""
    from experiments.models import Iteration

    return dict(Iteration.objects.filter(experiment_id__in=experiment_ids).values_list("pk", "index"))


def episode_aggregates(experiment_ids, size, *, where=None, indexes=None):
    """Episodes aggregated in SQL per (experiment, split, bucket of ``size`` iterations, task),
    optionally only those matching ``where`` (a Q): ``x`` (the bucket's last iteration),
    ``bucket`` (0-based), ``n``, ``wins`` (successes), reward ``mean``/``lo``/``hi``; ordered by
    those keys. One query, after iteration_indexes (unless ``indexes`` is given): grouped by
    iteration without a join while a bucket is one iteration (an index-only scan of
    exp_episode_curve), by buckets joined to their iteration's index beyond MAX_POINTS."""
    from experiments.models import Episode

    if indexes is None:
        indexes = iteration_indexes(experiment_ids)
    stats = {
        # COUNT(*), not COUNT(id): every column read is in exp_episode_curve, so no row is fetched
        "n": Count("*"),
        "wins": Count("success", filter=Q(success=True)),
        "mean": Avg("reward"),
        "lo": Min("reward"),
        "hi": Max("reward"),
    }
    episodes = Episode.objects.filter(experiment_id__in=experiment_ids)
    if where is not None:
        episodes = episodes.filter(where)
    if size > 1:
        keys = ["experiment_id", "split", "bucket", "task_id"]
        episodes = episodes.annotate(bucket=_bucket("iteration__index", size))
        return _fetch(episodes.values(*keys).annotate(x=Max("iteration__index"), **stats).order_by(*keys))
    keys = ["experiment_id", "split", "iteration_id", "task_id"]
    rows = _fetch(episodes.values(*keys).annotate(**stats).order_by(*keys))
    for row in rows:
        row["x"] = indexes[row.pop("iteration_id")]
        row["bucket"] = row["x"] - 1
    rows.sort(key=lambda r: (r["experiment_id"], r["split"], r["bucket"], r["task_id"]))
    return rows


def metric_series(experiment_ids, names, size, split="train"):
    """``{(experiment id, name): {"x": [...], "y": [...]}}`` of metric points averaged per bucket
    of ``size`` iterations, in SQL (one query)."""
    from experiments.models import MetricPoint

    rows = _fetch(
        MetricPoint.objects.filter(experiment_id__in=experiment_ids, split=split, name__in=names)
        .annotate(bucket=_bucket("iteration", size))
        .values("experiment_id", "name", "bucket")
        .annotate(x=Max("iteration"), y=Avg("value"))
        .order_by("experiment_id", "name", "bucket")
    )
    series = {}
    for row in rows:
        line = series.setdefault((row["experiment_id"], row["name"]), {"x": [], "y": []})
        line["x"].append(row["x"])
        line["y"].append(row["y"])
    return series


def _overall(rows):
    """Per-(split, bucket) figures combined from per-task rows (ordered by split, bucket): ``{split:
    {x, mean, lo, hi, success, n}}``, each a list in bucket order."""
    lines, key = {}, None
    for row in rows:
        if (row["split"], row["bucket"]) != key:  # a new point
            key = (row["split"], row["bucket"])
            line = lines.setdefault(
                row["split"], {"x": [], "n": [], "wins": [], "total": [], "lo": [], "hi": []}
            )
            for name, start in (("n", 0), ("wins", 0), ("total", 0.0)):
                line[name].append(start)
            line["x"].append(row["x"])
            line["lo"].append(row["lo"])
            line["hi"].append(row["hi"])
        line["x"][-1] = max(line["x"][-1], row["x"])
        line["n"][-1] += row["n"]
        line["wins"][-1] += row["wins"]
        line["total"][-1] += row["mean"] * row["n"]
        line["lo"][-1] = min(line["lo"][-1], row["lo"])
        line["hi"][-1] = max(line["hi"][-1], row["hi"])
    for line in lines.values():
        line["mean"] = [total / n for total, n in zip(line.pop("total"), line["n"], strict=True)]
        line["success"] = [wins / n for wins, n in zip(line.pop("wins"), line["n"], strict=True)]
    return lines


def _windowed(observations):
    """(first, best, latest) success of one task over windows of TREND_WINDOW consecutive
    observations ``[(n, wins)]`` (weighted by episodes), or Nones without observations."""
    if not observations:
        return None, None, None
    width = min(TREND_WINDOW, len(observations))
    n = wins = 0
    windows = []
    for index, (count, won) in enumerate(observations):
        n, wins = n + count, wins + won
        if index >= width:
            n, wins = n - observations[index - width][0], wins - observations[index - width][1]
        if index >= width - 1:
            windows.append(wins / n)
    return windows[0], max(windows), windows[-1]


def task_trends(tasks, rows, split="train"):
    """One entry per task of the suite: its success at first, at its best and lately (windows of
    TREND_WINDOW observations), ``drop`` (best - latest: how much it has newly failed) and
    ``change`` (latest - first); ``observed`` False for a task never sampled in ``split``."""
    observations = {}
    for row in rows:
        if row["split"] == split:
            observations.setdefault(row["task_id"], []).append((row["n"], row["wins"]))
    trends = []
    for task in tasks:
        first, best, latest = _windowed(observations.get(task["pk"], []))
        observed = first is not None
        trends.append(
            {
                **task,
                "observed": observed,
                "first": first,
                "best": best,
                "latest": latest,
                "drop": best - latest if observed else None,
                "change": latest - first if observed else None,
            }
        )
    return trends


def newly_failing_order(trends):
    """Task pks with the largest drop from their best first; unobserved tasks last."""
    ranked = sorted(trends, key=lambda t: (not t["observed"], -(t["drop"] or 0), -(t["best"] or 0)))
    return [t["pk"] for t in ranked]


def _rows_of_experiment(model):
    """SQL: how many rows of ``model`` belong to the outer query's experiment (COUNT(*): an
    index-only count)."""
    rows = model.objects.filter(experiment=OuterRef("pk")).order_by().values("experiment")
    return Coalesce(Subquery(rows.annotate(n=Count("*")).values("n"), output_field=IntegerField()), 0)


def with_history_size(experiments):
    """``experiments`` annotated with ``episode_count`` and ``point_count`` (metric points), in the
    same query."""
    from experiments.models import Episode, MetricPoint

    return experiments.annotate(
        episode_count=_rows_of_experiment(Episode), point_count=_rows_of_experiment(MetricPoint)
    )


def curves_cache_key(experiment):
    """What experiment_curves of an experiment (annotated by with_history_size) depends on: a new
    episode or metric point, an iteration or a status changes it."""
    parts = (experiment.pk, experiment.status, experiment.current_iteration)
    parts += (experiment.episode_count, experiment.point_count)
    return "experiment-curves:" + ":".join(map(str, parts))


def experiment_curves(experiment):
    """Everything the experiment page draws, from two aggregate queries and the suite's tasks:
    reward mean/min/max and success per split, the task x iteration success heatmap (train
    split), each task's trend, and the training, zero-variance and throughput metric lines."""
    size = bucket_size(experiment.current_iteration)
    tasks = experiment_tasks(experiment)
    rows = episode_aggregates([experiment.pk], size)
    names = (*TRAINING_METRICS, ZERO_VARIANCE_METRIC, *THROUGHPUT_METRICS)
    metrics = metric_series([experiment.pk], names, size)
    columns = sorted({(r["bucket"], r["x"]) for r in rows if r["split"] == "train"})
    index = {bucket: i for i, (bucket, _x) in enumerate(columns)}
    cells = {t["pk"]: [None] * len(columns) for t in tasks}
    for row in rows:
        if row["split"] == "train" and row["task_id"] in cells:
            cells[row["task_id"]][index[row["bucket"]]] = row["wins"] / row["n"]
    trends = task_trends(tasks, rows)
    held_out = task_trends(tasks, rows, split="test")
    for trend, test in zip(trends, held_out, strict=True):
        trend["heldout_latest"] = test["latest"]
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "finished": experiment.finished,
        "bucket": size,
        "splits": _overall(rows),
        "heatmap": {
            "x": [x for _bucket_index, x in columns],
            "tasks": tasks,
            "z": [cells[t["pk"]] for t in tasks],
            "newly_failing": newly_failing_order(trends),
        },
        "trends": trends,
        "metrics": {name: line for (_pk, name), line in metrics.items()},
    }


CHECKPOINTS_SHOWN = 20


def experiment_page(experiment):
    """What the experiment page shows besides its curves: the newest checkpoints and the groups
    of the latest iteration that sampled any (each with its task) — three queries."""
    from experiments.models import Iteration

    checkpoints = list(
        experiment.checkpoints.order_by("-version").only(
            "experiment_id", "version", "created_at", "path", "metrics"
        )[:CHECKPOINTS_SHOWN]
    )
    latest = (
        Iteration.objects.filter(experiment=experiment, phase="grpo", episodes_done__gt=0)
        .only("index", "groups")
        .order_by("-index")
        .first()
    )
    tasks = {t["pk"]: t["task_id"] for t in experiment_tasks(experiment)}
    groups = []
    if latest is not None:
        groups = [
            {"task": task_pk, "task_id": tasks.get(task_pk, f"task {task_pk}"), "variant": variant}
            for task_pk, variant in latest.groups
        ]
    return {"checkpoints": checkpoints, "latest_iteration": latest, "groups": groups}


# --- GRPO group view ----------------------------------------------------------------------------

ADVANTAGE_EPS = 1e-4  # as trainer.grpo.group_advantages


def _call_text(step):
    """One step as a comparable line: the call (method, path, body), the final answer or the
    format error."""
    action = step["action"]
    if not action:
        return "format error"
    if "final" in action:
        return f"final: {action['final']}"
    body = action.get("body")
    text = f"{action.get('method', '?')} {action.get('path', '?')}"
    return f"{text} {json.dumps(body, sort_keys=True)}" if body not in (None, {}, "") else text


def grpo_group(experiment, index, task_pk, variant):
    """The samples of one task variant in iteration ``index``: each with its reward, advantage
    (reward - group mean, divided by the group's std as the GRPO update does), success, turns and
    calls; ``first_difference``: the first step at which the samples' calls differ (None when they
    all made the same calls); ``zero_variance``: every reward equal, no learning signal;
    ``neighbours``: what to open for the iterations before and after. Five queries (iteration,
    episodes, steps, the suite's tasks, the neighbours). Raises Iteration.DoesNotExist."""
    from experiments.models import Episode, Iteration, Step

    iteration = Iteration.objects.only("index", "groups", "phase").get(experiment=experiment, index=index)
    episodes = list(
        Episode.objects.filter(iteration=iteration, task_id=task_pk, variant_index=variant, split="train")
        .select_related("task")
        .only("pk", "sample_index", "reward", "success", "turns", "finished", "tokens", "instruction", "task")
        .order_by("sample_index")
    )
    calls = {e.pk: [] for e in episodes}
    steps = Step.objects.filter(episode_id__in=list(calls)).order_by("episode_id", "index")
    for step in steps.values("episode_id", "index", "action", "response__status"):
        calls[step["episode_id"]].append({"text": _call_text(step), "status": step["response__status"]})
    rewards = [e.reward for e in episodes]
    mean = sum(rewards) / len(rewards) if rewards else 0.0
    std = statistics.stdev(rewards) if len(rewards) > 1 else 0.0
    zero_variance = bool(rewards) and max(rewards) == min(rewards)
    first = _first_difference([[c["text"] for c in calls[e.pk]] for e in episodes])
    samples = []
    for episode in episodes:
        made = calls[episode.pk]
        advantage = 0.0 if zero_variance else (episode.reward - mean) / (std + ADVANTAGE_EPS)
        samples.append(
            {
                "episode": episode,
                "advantage": advantage,
                "centred": episode.reward - mean,
                "calls": made,
                "diverging_call": (made[first] if first is not None and first < len(made) else None),
            }
        )
    task_names = {t["pk"]: t["task_id"] for t in experiment_tasks(experiment)}
    return {
        "neighbours": _neighbour_groups(experiment, index, [int(task_pk), int(variant)]),
        "iteration": iteration,
        "task_id": task_names.get(int(task_pk), str(task_pk)),
        "samples": samples,
        "mean": mean,
        "std": std,
        "zero_variance": zero_variance,
        "first_difference": first,
        "best": max(episodes, key=lambda e: (e.reward, -e.sample_index)) if episodes else None,
        "worst": min(episodes, key=lambda e: (e.reward, e.sample_index)) if episodes else None,
        "siblings": [
            {"task": t, "task_id": task_names.get(t, str(t)), "variant": v} for t, v in iteration.groups
        ],
    }


def _neighbour_groups(experiment, index, group):
    """``[(label, index, [task pk, variant])]`` of the iterations before and after ``index``: the
    same group where that iteration sampled it, its first group otherwise (one query)."""
    from experiments.models import Iteration

    around = Iteration.objects.filter(experiment=experiment, index__in=[index - 1, index + 1])
    out = []
    for other in around.exclude(groups=[]).only("index", "groups").order_by("index"):
        target = group if group in other.groups else other.groups[0]
        out.append(("previous" if other.index < index else "next", other.index, target))
    return out


def _first_difference(sequences):
    """The first index at which the sequences differ (one ending earlier counts), or None."""
    if len(sequences) < 2:
        return None
    for position in range(max(len(s) for s in sequences)):
        seen = {s[position] if position < len(s) else None for s in sequences}
        if len(seen) > 1:
            return position
    return None


# --- Comparing experiments ----------------------------------------------------------------------

COMPARE_LIMIT = 8
SOLVED = 0.5  # a task counts as solved by a run when at least half its final episodes succeed


def compare_runs(ids):
    """Several experiments side by side (six queries): each run's curves per split, and a
    per-task table of final reward and success — from the last held-out evaluation, or, for a run
    without one, from the last iteration that sampled the task among its recent ones (enough for
    every task to come up about TREND_WINDOW times) — with the tasks each run solves that another
    does not."""
    from experiments.models import Experiment, Iteration, Task
    from experiments.services import evaluation_points

    experiments = list(
        Experiment.objects.select_related("suite", "owner").defer("traceback").filter(pk__in=ids)
    )
    experiments.sort(key=lambda e: ids.index(e.pk))
    pks = [e.pk for e in experiments]
    tasks = Task.objects.filter(suite_id__in={e.suite_id for e in experiments}).values_list(
        "pk", "task_id", "suite_id"
    )
    names, per_suite = {}, {}
    for pk, task_id, suite_id in tasks:
        names[pk] = task_id
        per_suite[suite_id] = per_suite.get(suite_id, 0) + 1
    indexes, per_run = {}, {pk: {} for pk in pks}
    for pk, index, experiment_id in Iteration.objects.filter(experiment_id__in=pks).values_list(
        "pk", "index", "experiment_id"
    ):
        indexes[pk] = per_run[experiment_id][pk] = index
    size = bucket_size(max((e.current_iteration for e in experiments), default=1))
    # The curves as each run recorded them per iteration (the train task's and the evaluation's
    # metric points): the experiment page draws the same numbers from its episodes.
    train = metric_series(pks, ("reward_mean", "success_rate"), size)
    test = metric_series(pks, ("reward", "success"), size, split="test")
    curves = [(e, _recorded_lines(e.pk, train, test)) for e in experiments]
    recent = []
    for e in experiments:
        per_iteration = max(1, e.hyperparameters.get("tasks_per_iteration", 1))
        span = TREND_WINDOW * math.ceil(per_suite.get(e.suite_id, 1) / per_iteration)
        last = max(per_run[e.pk].values(), default=0)
        evaluated = [i for i in evaluation_points(e) if i <= last][-2:]  # the last one may be under way
        recent += [pk for pk, i in per_run[e.pk].items() if i > last - span or i in evaluated]
    final_rows = episode_aggregates(pks, 1, where=Q(iteration_id__in=recent), indexes=indexes)
    finals = {
        e.pk: _final_per_task([r for r in final_rows if r["experiment_id"] == e.pk]) for e in experiments
    }
    task_pks = sorted({pk for final in finals.values() for pk in final})
    table = []
    for pk in sorted(task_pks, key=lambda p: names.get(p, "")):
        cells = [finals[e.pk].get(pk) for e in experiments]
        solved = [c is not None and c["success"] >= SOLVED for c in cells]
        table.append(
            {
                "task": pk,
                "task_id": names.get(pk, str(pk)),
                "cells": [dict(c, solved=s) if c else None for c, s in zip(cells, solved, strict=True)],
                "uneven": any(solved) and not all(solved),
            }
        )
    solves_only = {
        e.pk: [
            row["task_id"] for row in table if row["cells"][i] and row["cells"][i]["solved"] and row["uneven"]
        ]
        for i, e in enumerate(experiments)
    }
    return {
        "experiments": experiments,
        "curves": curves,
        "bucket": size,
        "tasks": table,
        "solves_only": solves_only,
    }


def _recorded_lines(pk, train, test):
    """``{split: {x, mean, success}}`` of one run from its metric series (compare_runs)."""
    lines = {}
    for split, series, reward, success in (
        ("train", train, "reward_mean", "success_rate"),
        ("test", test, "reward", "success"),
    ):
        means = series.get((pk, reward))
        if means:
            rates = dict(zip(*series.get((pk, success), {"x": [], "y": []}).values(), strict=True))
            lines[split] = {
                "x": means["x"],
                "mean": means["y"],
                "success": [rates.get(x) for x in means["x"]],
            }
    return lines


def _final_per_task(rows):
    """``{task pk: {reward, success, split, iteration}}``: the last held-out bucket of each task,
    or its last train bucket when the run has no held-out evaluation of it."""
    final = {}
    for split in ("train", "test"):  # test last: it wins where both exist
        for row in rows:
            if row["split"] == split:
                final[row["task_id"]] = {
                    "reward": row["mean"],
                    "success": row["wins"] / row["n"],
                    "split": split,
                    "iteration": row["x"],
                }
    return final
