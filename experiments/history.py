"""Recorded training histories without a model: experiments with their iterations, episodes,
steps, checkpoints and metric points, written in bulk.

The page benchmarks need 100k episodes and the page tests need realistic finished runs in
milliseconds; running a policy for either would take hours. ``record_history`` writes what a run
of a suite's real tasks would have recorded — per-task success rising with the iterations at a
task-specific pace, a few tasks that regress in the second half (so "newly failing" has
something to find), groups without reward variance, the tasks' own check names and solution
calls — from a seeded random generator, so the same arguments give the same rows. Nothing here
runs in a real experiment.
"""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from experiments import hyperparameters
from experiments.models import Checkpoint, Episode, Experiment, Iteration, MetricPoint, Step
from experiments.updates import evaluation_figures

BATCH = 2000
_TEMPLATE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
OUTPUTS_OF_A_CONFUSED_MODEL = [
    "I will look that up for you.",
    '{"method": "GET", "path": "/rest/api/3/issue"',
    "<script>alert('model output is untrusted')</script>",
]


def record_history(
    *,
    owner,
    suite,
    iterations=10,
    tasks_per_iteration=4,
    group_size=4,
    steps_per_episode=3,
    eval_every=5,
    algorithm=Experiment.GRPO,
    model_name="tiny-random",
    name=None,
    seed=0,
    status=Experiment.COMPLETED,
) -> Experiment:
    """A finished (or, with ``status``, stopped) experiment of ``suite`` with its whole history:
    ``iterations`` iterations of ``tasks_per_iteration`` groups of ``group_size`` training
    episodes of ``steps_per_episode`` steps each, a held-out evaluation of every task's first
    test variant every ``eval_every`` iterations (0: none), a checkpoint and metric points per
    iteration. Returns the Experiment."""
    rng = random.Random(seed)  # noqa: S311 - made-up data, reproducible by seed
    tasks = list(suite.tasks.order_by("position"))
    if not tasks:
        raise ValueError(f"suite {suite.name} has no tasks")
    hp = hyperparameters.validate(
        {
            "iterations": iterations,
            "group_size": group_size,
            "tasks_per_iteration": tasks_per_iteration,
            "eval_every": eval_every,
            "seed": seed,
        }
    )
    candidates = [(task, variant) for task in tasks for variant in range(20)]
    pace = {t.pk: _TaskPace(rng, index) for index, t in enumerate(tasks)}
    started = timezone.now() - timedelta(minutes=5 * iterations + 5)
    with transaction.atomic():
        experiment = Experiment.objects.create(
            name=name or f"{suite.name} history #{seed}",
            suite=suite,
            model_name=model_name,
            algorithm=algorithm,
            hyperparameters=hp,
            status=status,
            owner=owner,
            started_at=started,
            finished_at=timezone.now() if status in Experiment.FINISHED else None,
            current_iteration=iterations,
        )
        runs = [_IterationRecord(experiment, index, started) for index in range(1, iterations + 1)]
        Iteration.objects.bulk_create([run.iteration for run in runs], batch_size=BATCH)
        episodes, steps = [], []
        for run in runs:
            progress = run.index / iterations
            for task, variant in rng.sample(candidates, min(tasks_per_iteration, len(candidates))):
                run.groups.append([task.pk, variant])
                for sample in range(group_size):
                    episodes.append(
                        _episode(rng, run, task, variant, "train", sample, pace[task.pk].p(progress))
                    )
            if eval_every and (run.index % eval_every == 0 or run.index == iterations):
                for task in tasks:
                    run.eval_groups.append([task.pk, 0])
                    episodes.append(_episode(rng, run, task, 0, "test", 0, pace[task.pk].p(progress)))
            if len(episodes) >= BATCH:
                steps += _write(episodes, rng, steps_per_episode)
                episodes = []
            if len(steps) >= BATCH * 3:
                Step.objects.bulk_create(steps, batch_size=BATCH)
                steps = []
        steps += _write(episodes, rng, steps_per_episode)
        Step.objects.bulk_create(steps, batch_size=BATCH)
        for run in runs:
            run.iteration.groups, run.iteration.eval_groups = run.groups, run.eval_groups
            run.iteration.episodes_expected = len(run.groups) * group_size
            run.iteration.episodes_done = run.iteration.episodes_expected
        Iteration.objects.bulk_update(
            [run.iteration for run in runs], ["groups", "eval_groups", "episodes_expected", "episodes_done"]
        )
        _metrics(experiment, runs)
        Experiment.objects.filter(pk=experiment.pk).update(
            episodes_planned=Episode.objects.filter(experiment=experiment).count()
        )
    experiment.refresh_from_db()
    return experiment


class _TaskPace:
    """How fast one task is learnt: a logistic success curve with its own midpoint and slope;
    every fifth task regresses in the second half of the run."""

    def __init__(self, rng, index):
        self.start = rng.uniform(0.0, 0.3)
        self.midpoint = rng.uniform(0.2, 0.8)
        self.slope = rng.uniform(6, 14)
        self.regresses = index % 5 == 4

    def p(self, progress):
        p = self.start + (0.97 - self.start) / (1 + math.exp(-self.slope * (progress - self.midpoint)))
        return p * 0.3 if self.regresses and progress > 0.6 else p


class _IterationRecord:
    def __init__(self, experiment, index, started):
        self.index = index
        self.groups, self.eval_groups = [], []
        self.episodes = []
        self.iteration = Iteration(
            experiment=experiment,
            index=index,
            state=Iteration.DONE,
            phase="grpo",
            policy_version=index - 1,
            started_at=started + timedelta(minutes=5 * (index - 1)),
            rollouts_finished_at=started + timedelta(minutes=5 * index - 1),
            finished_at=started + timedelta(minutes=5 * index),
            rollout_seconds=240.0,
            train_seconds=60.0,
        )


def _episode(rng, run, task, variant, split, sample, p_success):
    success = rng.random() < p_success
    checks = _checks(rng, task, success)
    reward = 1.0 if success else round(sum(c["score"] * c["weight"] for c in checks) / _weight(checks), 3)
    format_errors = 0 if success or rng.random() < 0.7 else rng.randint(1, 3)
    episode = Episode(
        experiment=run.iteration.experiment,
        iteration=run.iteration,
        task=task,
        variant_index=variant,
        split=split,
        sample_index=sample,
        instruction=_fill(task.spec.get("instruction", task.task_id), rng),
        policy_version=run.iteration.policy_version,
        reward=reward,
        success=success,
        checks=checks,
        failure_category="" if success else ("format" if format_errors else "checks"),
        turns=0,
        finished=success or rng.random() < 0.5,
        tokens=0,
        duration=rng.uniform(2, 20),
        details={"variant": f"{split}/{variant}", "format_errors": format_errors, "calls": 0},
    )
    run.episodes.append(episode)
    return episode


def _checks(rng, task, success):
    specs = list(task.spec.get("expect", [])) + list(task.spec.get("trace", []))
    checks = []
    for spec in specs or [{"name": "outcome", "type": "answer", "weight": 1.0, "required": True}]:
        passed = success or rng.random() < 0.5
        checks.append(
            {
                "name": spec.get("name") or spec["type"],
                "type": spec["type"],
                "passed": passed,
                "score": 1.0 if passed else round(rng.choice([0.0, 0.0, 0.25, 0.5]), 2),
                "weight": float(spec.get("weight", 1.0)),
                "required": bool(spec.get("required", True)),
                "detail": "as expected" if passed else f"{spec['type']}: not found in the final world",
            }
        )
    if not success and all(c["passed"] for c in checks):
        checks[0].update(passed=False, score=0.0, detail="the required check failed")
    return checks


def _weight(checks):
    return sum(c["weight"] for c in checks) or 1.0


def _write(episodes, rng, steps_per_episode):
    """Insert ``episodes`` (ids are set on PostgreSQL and SQLite alike by bulk_create) and return
    their unsaved steps, with each episode's turns, tokens and calls filled in first."""
    plans = []
    for episode in episodes:
        turns = max(1, steps_per_episode + rng.randint(-1, 1)) if steps_per_episode else 0
        plans.append(_steps(rng, episode, turns))
        episode.turns = turns
        episode.tokens = sum(len(s.token_bytes) // 4 for s in plans[-1])
        episode.details["calls"] = sum(1 for s in plans[-1] if s.request)
    Episode.objects.bulk_create(episodes, batch_size=BATCH)
    steps = []
    for episode, plan in zip(episodes, plans, strict=True):
        for step in plan:
            step.episode_id = episode.pk
        steps += plan
    return steps


def _steps(rng, episode, turns):
    solution = [s for s in episode.task.spec.get("solution", []) if "method" in s] or [
        {"method": "GET", "path": "/rest/api/3/myself"}
    ]
    steps = []
    for index in range(turns):
        last = index == turns - 1
        broken = not episode.success and rng.random() < 0.15
        call = solution[index % len(solution)]
        if broken:
            raw, action, error = rng.choice(OUTPUTS_OF_A_CONFUSED_MODEL), None, "no JSON object in the output"
        elif last and episode.finished:
            raw, action, error = '{"final": "done"}', {"final": "done"}, ""
        else:
            action = {
                "method": call["method"],
                "path": _fill(call["path"], rng),
                "body": _fill_json(call.get("body"), rng),
            }
            raw, error = str(action).replace("'", '"'), ""
        request = dict(action, query={}) if action and "method" in action else None
        status = (200 if request["method"] == "GET" else 201) if request else None
        if request and not episode.success and rng.random() < 0.3:
            status = rng.choice([400, 404])
        tokens = [rng.randrange(49152) for _ in range(rng.randint(20, 120))]
        token_bytes, logprob_bytes = Step.pack(tokens, [-rng.random() * 2 for _ in tokens])
        steps.append(
            Step(
                index=index,
                prompt_tokens=300 + 150 * index,
                raw_output=raw,
                action=action,
                parse_error=error,
                request=request,
                response=_response(status, request) if request else None,
                world_changes=_changes(request, status),
                observation=f"HTTP {status}" if status else f"format error: {error}" if error else "",
                token_bytes=token_bytes,
                logprob_bytes=logprob_bytes,
                finish_reason="stop",
                latency=rng.uniform(0.5, 4.0),
            )
        )
    return steps


def _response(status, request):
    if status >= 400:
        return {"status": status, "body": {"errorMessages": ["Issue does not exist"], "errors": {}}}
    if request["method"] == "GET":
        return {"status": status, "body": {"key": "OPS-1", "fields": {"status": {"name": "To Do"}}}}
    return {"status": status, "body": {"id": "10101", "key": "OPS-101"}}


def _changes(request, status):
    if not request or request["method"] == "GET" or status >= 400:
        return []
    return [
        {"action": "create", "object_type": "issue", "object_ref": "OPS-101", "field": "summary"}
        | {"before": None, "after": "Fix typo on the returns page"},
        {"action": "update", "object_type": "issue", "object_ref": "OPS-101", "field": "labels"}
        | {"before": [], "after": ["quick-win"]},
    ]


def _fill(text, rng):
    return _TEMPLATE.sub(lambda m: rng.choice(["OPS-3", "WEB-7", "Done", "quick-win", "High"]), str(text))


def _fill_json(value, rng):
    if isinstance(value, dict):
        return {k: _fill_json(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, rng) for v in value]
    return _fill(value, rng) if isinstance(value, str) else value


def _metrics(experiment, runs):
    """Training metric points per iteration (the names the train task records), per-task reward,
    and held-out ``reward``/``success`` (overall and per task) where an evaluation ran; one
    checkpoint per iteration."""
    points, checkpoints = [], []
    for run in runs:
        train = [e for e in run.episodes if e.split == Episode.TRAIN]
        rewards = [e.reward for e in train]
        mean = sum(rewards) / len(rewards)
        groups = {}
        for e in train:
            groups.setdefault((e.task_id, e.variant_index), []).append(e.reward)
        zero_variance = sum(1 for g in groups.values() if max(g) == min(g)) / max(len(groups), 1)
        numbers = {
            "reward_mean": mean,
            "reward_std": (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5,
            "reward_min": min(rewards),
            "reward_max": max(rewards),
            "success_rate": sum(e.success for e in train) / len(train),
            "loss": 0.5 * (1 - mean) + 0.01 * run.index % 3,
            "kl": 0.001 * run.index,
            "entropy": 1.5 - 0.08 * run.index % 1.2,
            "clip_fraction": 0.02 + 0.01 * (run.index % 4),
            "grad_norm": 0.8 + 0.1 * (run.index % 5),
            "zero_variance_fraction": zero_variance,
            "tokens_generated": float(sum(e.tokens for e in train)),
            "tokens_trained": float(sum(e.tokens for e in train) * 2),
            "tokens_per_s": 60.0 + run.index % 7,
            "generation_tokens_per_s": 40.0 + run.index % 5,
        }
        by_task = {}
        for e in train:
            by_task.setdefault(e.task.task_id, []).append(e.reward)
        numbers |= {f"reward_per_task/{task}": sum(r) / len(r) for task, r in by_task.items()}
        numbers |= {
            f"success_per_task/{t}": sum(e.success for e in train if e.task.task_id == t) / len(r)
            for t, r in by_task.items()
        }
        points += [
            MetricPoint(experiment=experiment, iteration=run.index, split="train", name=k, value=v)
            for k, v in numbers.items()
        ]
        test = [e for e in run.episodes if e.split == Episode.TEST]
        if test:  # what the evaluation's train task records, from the same function
            points += [
                MetricPoint(experiment=experiment, iteration=run.index, split="test", name=k, value=v)
                for k, v in evaluation_figures(test).items()
            ]
        checkpoints.append(
            Checkpoint(
                experiment=experiment,
                version=run.index,
                path=f"checkpoints/{experiment.pk}/v{run.index}",
                metrics={k: v for k, v in numbers.items() if "/" not in k},
            )
        )
    MetricPoint.objects.bulk_create(points, batch_size=BATCH)
    Checkpoint.objects.bulk_create(checkpoints, batch_size=BATCH)
