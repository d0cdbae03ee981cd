"""Functions that change state on behalf of a user, shared by the pages and the commands."""

import json
from dataclasses import dataclass, field

from celery import chord

from experiments.tasks import rollout_probe, train_probe
from trainer.prompts import OBSERVATION_TOKENS


def run_worker_check(rollouts=4, timeout=60):
    """Run a chord of ``rollouts`` probe tasks on the ``rollout`` queue followed by one on the
    ``train`` queue, through the configured broker and real workers; return the body's result.

    Raises celery.exceptions.TimeoutError when no worker finishes within ``timeout`` seconds.
    """
    result = chord(rollout_probe.s(index) for index in range(rollouts))(train_probe.s())
    return result.get(timeout=timeout, propagate=True)


def check_task(
    task_spec, *, task=None, source, user=None, sample=None, splits=("train", "test"), on_variant=None
):
    """Run ``suites check`` on one task (a TaskSpec): every variant of ``splits``, or the first
    ``sample`` of each (experiments.oracle.check_tasks). ``on_variant(report)`` is told of each
    VariantCheck as it is done. When ``task`` (the stored Task) is given, the result is kept as its
    last check (a TaskCheck, replacing the one before), made by ``source`` ("command" or "page") and
    ``user``. Returns the VariantChecks. Raises experiments.variants.VariantError when the task's
    variants cannot be drawn."""
    from django.utils import timezone

    from experiments.models import TaskCheck
    from experiments.oracle import check_tasks, saturated_tasks

    reports = []
    for report in check_tasks([task_spec], sample=sample, splits=splits):
        reports.append(report)
        if on_variant is not None:
            on_variant(report)
    if task is not None:
        prefix = f"{task.suite.name}/"
        failed = sum(not r.passed for r in reports)
        saturated = saturated_tasks([(task.suite.name, r) for r in reports])
        TaskCheck.objects.update_or_create(
            task=task,
            defaults={
                "checked_at": timezone.now(),
                "passed": len(reports) - failed,
                "failed": failed,
                "sample": sample,
                "splits": list(splits),
                "saturated": saturated.get(f"{prefix}{task.task_id}", []),
                "results": [{**r.to_dict(), "line": r.line(prefix=prefix)} for r in reports],
                "spec_hash": task.spec_hash(),
                "source": source,
                "checked_by": user,
            },
        )
    return reports


# How much of a request or response body a dry run keeps, pretty-printed: enough to read an issue,
# not a whole search result.
DRY_RUN_BODY_CHARS = 2000


@dataclass
class DryRun:
    """What the oracle did in one variant and how the verifier scored it, for the task page."""

    variant: object  # the Variant, setup results bound
    calls: list = field(default_factory=list)  # the solution's calls (after setup), as _shown_call
    final_answer: object = None
    verdict: object = None  # experiments.verifiers.Verdict; None when the setup failed
    error: str = ""  # why the setup or the solution could not run


def dry_run(variant, *, template=None):
    """Play one variant's oracle as ``suites check`` does, once: fork its seed world, run the
    setup and the solution, verify. Returns a DryRun with the instruction as bound by the setup,
    each call the solution made, its final answer and the verdict. The forked world is deleted
    afterwards; a setup or solution that fails is reported in ``error``, not raised."""
    from experiments.environment import discard_worlds
    from experiments.runner import SetupError, prepare, run_solution
    from experiments.solvers import SolverError
    from experiments.templating import TemplateError
    from experiments.verifiers import verify
    from simulator.selectors import calls

    try:
        prepared = prepare(variant, template=template)  # deletes its world itself when setup fails
    except SetupError as err:
        return DryRun(variant, error=f"setup failed: {err}")
    result = DryRun(prepared.variant)
    try:
        try:
            result.final_answer = run_solution(prepared)
        except (SolverError, KeyError, TemplateError) as err:
            result.error = f"the solution could not run: {type(err).__name__}: {err}"
        result.calls = [_shown_call(c) for c in calls(prepared.world, after_seq=prepared.after_seq)]
        result.verdict = verify(
            prepared.world, prepared.variant, final_answer=result.final_answer, after_seq=prepared.after_seq
        )
    finally:
        discard_worlds([prepared.world])
    return result


def _shown_call(call):
    """A traced call with its query, body and response pretty-printed and cut."""
    return {
        **call,
        "query": _pretty(call["query"]) if call["query"] else "",
        "body": _pretty(call["body"]),
        "response": _pretty(call["response"]),
    }


def _pretty(value):
    if value is None:
        return ""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) <= DRY_RUN_BODY_CHARS:
        return text
    return f"{text[:DRY_RUN_BODY_CHARS]}\n… ({len(text) - DRY_RUN_BODY_CHARS} more characters)"


def demonstration_records(
    spec,
    split="train",
    *,
    tokenizer,
    tasks=(),
    per_task=None,
    tool_docs="families",
    observation_tokens=OBSERVATION_TOKENS,
):
    """(records, skipped): each variant's oracle as the chat an SFT run trains on, one JSON-able
    record per variant that scores 1.0: ``{"suite", "task", "variant", "split", "messages",
    "reward"}``. The messages are the trainer's own (experiments.training: the suite's system
    prompt, the instruction, each action as the JSON trainer.parsing reads and each observation as
    the agent loop renders it, cut to ``observation_tokens`` tokens of ``tokenizer``).
    ``skipped`` lists ``"variant key: why"`` for the variants left out. Raises TrainingError for
    unknown tasks."""
    from experiments.training import demonstrations, suite_system_prompt, transcript_messages

    system = suite_system_prompt(spec, tasks=tasks, scope=tool_docs)
    transcripts, skipped = demonstrations(spec, split, tasks=tasks, per_task=per_task)
    records = [
        {
            "suite": spec.name,
            "task": t.variant.task_id,
            "variant": t.variant.key,
            "split": split,
            "messages": transcript_messages(t, system, tokenizer, observation_tokens),
            "reward": t.result.reward,
        }
        for t in transcripts
    ]
    return records, skipped


# --- Experiments on Celery ---------------------------------------------------------------------------
# The lifecycle (queued -> running -> paused -> completed | failed | cancelled) and the scheduling of
# iterations. The tasks (experiments.tasks) check the status at every task boundary, so pause and
# cancel only change a row here; resume dispatches the current iteration again, whose rollout tasks
# skip the groups already written.

ACTIVE = ("queued", "running")


class ExperimentError(ValueError):
    """An experiment that cannot be started, or a transition its status does not allow."""


def start_experiment(owner, suite, model, algorithm="grpo", overrides=None, *, name=None, parent=None):
    """Create an Experiment (status queued) and dispatch its first iteration once committed.
    ``suite``: a TaskSuite or its name; ``overrides``: hyperparameters (experiments.hyperparameters),
    strings accepted; ``parent``: the Experiment it was cloned from. Raises ExperimentError
    (HyperparameterError included) with what to change."""
    from django.db import transaction

    from experiments.hyperparameters import HyperparameterError, validate
    from experiments.models import Experiment, TaskSuite
    from experiments.training import ALGOS, TrainingError

    if isinstance(suite, str):
        suite_name = suite
        suite = TaskSuite.objects.filter(name=suite_name).first()
        if suite is None:
            known = ", ".join(TaskSuite.objects.values_list("name", flat=True)) or "none"
            raise ExperimentError(f"no suite named {suite_name!r} (stored suites: {known})")
    if algorithm not in ALGOS:
        raise ExperimentError(f"algorithm is one of {', '.join(ALGOS)}, not {algorithm!r}")
    try:
        hp = validate(overrides)
    except HyperparameterError as err:
        raise ExperimentError(str(err)) from err
    from experiments.hyperparameters import train_config

    experiment = Experiment(
        name=name or f"{suite.name} {algorithm} {model}",
        suite=suite,
        model_name=model,
        algorithm=algorithm,
        hyperparameters=hp,
        owner=owner,
        parent=parent,
    )
    if experiment.iterations < 1:
        raise ExperimentError(f"{algorithm} has nothing to do: set sft_epochs to 1 or more")
    try:
        train_config(suite.name, model, algorithm, hp).check()
        train = _train_variants(suite, hp) if experiment.grpo_steps else []
        test = _test_variants(suite, hp) if evaluation_points(experiment) else []
    except TrainingError as err:
        raise ExperimentError(str(err)) from err
    if experiment.grpo_steps and not train:
        raise ExperimentError(f"suite {suite.name!r} has no train variants to train on")
    if evaluation_points(experiment) and not test:
        raise ExperimentError(f"suite {suite.name!r} has no test variants to evaluate on: set eval_every=0")
    groups = min(hp["tasks_per_iteration"], len(train))
    evaluations = len(evaluation_points(experiment)) + evaluates_before_training(experiment)
    experiment.episodes_planned = experiment.grpo_steps * groups * hp["group_size"] + evaluations * len(test)
    with transaction.atomic():
        experiment.save()
        if evaluates_before_training(experiment):
            schedule_iteration(experiment, 0)
        else:
            schedule_iteration(experiment, 1, train=train)
    return experiment


def _train_variants(suite, hp):
    """The train variants an experiment samples from, in the suite's order (experiments.training)."""
    from experiments.training import suite_variants

    per_task = hp["train_variants"] or None
    return suite_variants(suite.spec(), "train", tasks=hp["tasks"], per_task=per_task)


def _test_variants(suite, hp):
    """The held-out variants every evaluation runs (greedy, one episode each)."""
    from experiments.training import suite_variants

    per_task = hp["eval_variants"] or None
    return suite_variants(suite.spec(), "test", tasks=hp["tasks"], per_task=per_task)


def evaluation_points(experiment):
    """The iterations after which the held-out split is evaluated: every ``eval_every`` steps (SFT
    epochs included, as the headless run counts them) and the last one; none when ``eval_every``
    is 0. An "eval" experiment is one evaluation of the base policy."""
    if experiment.algorithm == "eval":
        return [1]
    every, steps = experiment.hyperparameters["eval_every"], experiment.iterations
    if not every:
        return []
    return sorted({*range(every, steps + 1, every), steps})


def evaluates_before_training(experiment):
    """Whether the run starts with iteration 0: a held-out evaluation of the base policy
    (version 0), the "before" point of the test curves. Training runs that evaluate at all do;
    an "eval" experiment is that evaluation already."""
    return experiment.algorithm != "eval" and bool(evaluation_points(experiment))


def schedule_evaluation(experiment, index):
    """Evaluate the policy iteration ``index`` saved (version ``index``) on the held-out split,
    once the transaction commits: a chord of ``rollout_group`` tasks with split "test" (one greedy
    episode per variant), then ``train_after_evaluation``. Dispatched again by a redelivered or
    resumed train task: the episodes already written are skipped."""
    from celery import chord
    from django.db import transaction

    from experiments.models import Experiment, Iteration
    from experiments.tasks import rollout_group, train_after_evaluation

    iteration = Iteration.objects.get(experiment=experiment, index=index)
    if not iteration.eval_groups:
        tasks = dict(experiment.suite.tasks.values_list("task_id", "pk"))
        iteration.eval_groups = [
            [tasks[v.task_id], v.index] for v in _test_variants(experiment.suite, experiment.hyperparameters)
        ]
    iteration.state = "evaluating"
    iteration.save(update_fields=["eval_groups", "state"])
    status = Experiment.objects.values_list("status", flat=True).get(pk=experiment.pk)
    if status in ACTIVE:
        header = [
            rollout_group.s(experiment.pk, index, task, variant, "test")
            for task, variant in iteration.eval_groups
        ]
        body = train_after_evaluation.s(experiment.pk, index)
        transaction.on_commit(lambda: chord(header)(body))
    return iteration


def advance_experiment(experiment, index):
    """After iteration ``index`` is done: schedule the next one, or complete the experiment."""
    from django.utils import timezone

    from experiments.models import Experiment, Iteration

    Iteration.objects.filter(experiment=experiment, index=index).update(
        state="done", finished_at=timezone.now()
    )
    if index < experiment.iterations:
        schedule_iteration(experiment, index + 1)
    else:
        Experiment.objects.filter(pk=experiment.pk, status="running").update(
            status="completed", finished_at=timezone.now()
        )


def iteration_variants(train, tasks_per_iteration, seed, index):
    """The variants of iteration ``index`` (1-based): the headless run's cycled order
    (experiments.training.IterationSampler), replayed from the start so that any process picks
    the same ones."""
    from experiments.training import IterationSampler

    sampler = IterationSampler(train, tasks_per_iteration, "cycle", seed)
    chosen = []
    for _iteration in range(index):
        chosen = sampler.next()
    return chosen


def schedule_iteration(experiment, index, *, train=None, redispatch=False):
    """Create iteration ``index`` (its groups and the policy version it samples) and, once the
    transaction commits, dispatch its chord: one ``rollout_group`` per group, then
    ``train_iteration``. An existing iteration is dispatched again only with ``redispatch``
    (resume); nothing is dispatched while the experiment is paused or finished."""
    from celery import chord
    from django.db import transaction

    from experiments.models import Experiment, Iteration
    from experiments.tasks import rollout_group, train_iteration

    hp = experiment.hyperparameters
    phase = "eval" if index == 0 else experiment.phase(index)
    iteration = Iteration.objects.filter(experiment=experiment, index=index).first()
    created = iteration is None
    if created:
        variants = []
        if phase == "grpo":
            variants = iteration_variants(
                train if train is not None else _train_variants(experiment.suite, hp),
                hp["tasks_per_iteration"],
                hp["seed"],
                index - experiment.sft_steps,
            )
        tasks = dict(experiment.suite.tasks.values_list("task_id", "pk"))
        # get_or_create: two train tasks of one iteration (a resume while its first chord was still
        # in flight) may both schedule the next one.
        iteration, created = Iteration.objects.get_or_create(
            experiment=experiment,
            index=index,
            defaults={
                "phase": phase,
                "policy_version": max(index - 1, 0),
                "groups": [[tasks[v.task_id], v.index] for v in variants],
                "episodes_expected": len(variants) * hp["group_size"],
            },
        )
    # Forward only: a late copy of an earlier iteration's train task must not move it back.
    Experiment.objects.filter(pk=experiment.pk, current_iteration__lte=index).update(current_iteration=index)
    experiment.current_iteration = max(experiment.current_iteration, index)
    status = Experiment.objects.values_list("status", flat=True).get(pk=experiment.pk)
    if not (created or redispatch) or status not in ACTIVE:
        return iteration
    if phase == "eval":
        schedule_evaluation(experiment, index)
    elif phase == "sft":  # no rollouts: an epoch on the demonstrations
        transaction.on_commit(lambda: train_iteration.delay([], experiment.pk, index))
    else:
        header = [
            rollout_group.s(experiment.pk, index, task_pk, variant_index)
            for task_pk, variant_index in iteration.groups
        ]
        body = train_iteration.s(experiment.pk, index)
        transaction.on_commit(lambda: chord(header)(body))
    return iteration


def redispatch_iteration(experiment, iteration):
    """Dispatch an unfinished iteration again, from where it is (resume, and the stall detector
    of experiments.recovery): its held-out evaluation when it is evaluating, else its chord, whose
    train body goes on to the evaluation when the checkpoint is already saved."""
    from django.utils import timezone

    from experiments.models import Iteration

    Iteration.objects.filter(pk=iteration.pk).update(redispatched_at=timezone.now())
    if iteration.state == "evaluating":
        return schedule_evaluation(experiment, iteration.index)
    return schedule_iteration(experiment, iteration.index, redispatch=True)


def _transition(experiment, allowed, status, **fields):
    from django.utils import timezone

    from experiments.models import Experiment

    if "finished_at" in fields:
        fields["finished_at"] = timezone.now()
    changed = Experiment.objects.filter(pk=experiment.pk, status__in=allowed).update(status=status, **fields)
    experiment.refresh_from_db()
    if not changed:
        raise ExperimentError(f"experiment {experiment.pk} is {experiment.status}; it cannot become {status}")
    return experiment


def pause_experiment(experiment):
    """Stop at the next task boundary: rollout tasks not yet started skip their group, the train
    task does not train. ``resume_experiment`` carries on from there."""
    return _transition(experiment, ACTIVE, "paused")


def resume_experiment(experiment):
    """Dispatch the current iteration again; groups already written are skipped, a checkpoint
    already saved is not trained again."""
    from django.db import transaction

    with transaction.atomic():
        _transition(experiment, ("paused",), "running")
        redispatch_iteration(experiment, experiment.iteration_set.order_by("-index").first())
    return experiment


def cancel_experiment(experiment):
    """Stop for good at the next task boundary; what was written stays."""
    return _transition(experiment, ("queued", "running", "paused"), "cancelled", finished_at=True)


def fail_experiment(experiment_id, error, traceback_text=""):
    """Mark an experiment failed (unless it already finished) with the error and its traceback."""
    from django.utils import timezone

    from experiments.models import Experiment

    Experiment.objects.filter(pk=experiment_id, status__in=(*ACTIVE, "paused")).update(
        status="failed", error=error[:2000], traceback=traceback_text, finished_at=timezone.now()
    )


def experiment_progress(experiment) -> dict:
    """What the progress endpoint and ``experiment status --json`` report: status, iteration,
    episodes done/total, an ETA from the episode rate so far, and the latest iteration's metrics."""
    from django.utils import timezone

    from experiments.models import Checkpoint, Episode, MetricPoint

    experiment.refresh_from_db()
    done = Episode.objects.filter(experiment=experiment).count()
    total = experiment.episodes_planned
    eta = None
    if experiment.status == "completed":
        eta = 0.0
    elif experiment.status in ACTIVE and experiment.started_at and done:
        elapsed = (timezone.now() - experiment.started_at).total_seconds()
        eta = max(total - done, 0) * elapsed / done
    latest = MetricPoint.objects.filter(experiment=experiment, split="train").order_by("-iteration").first()
    metrics = _latest_metrics(experiment, "train")
    evaluation = _latest_metrics(experiment, "test")
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "suite": experiment.suite.name,
        "model": experiment.model_name,
        "algorithm": experiment.algorithm,
        "status": experiment.status,
        "iteration": experiment.current_iteration,
        "iterations": experiment.iterations,
        "episodes_done": done,
        "episodes_total": total,
        "eta_seconds": eta,
        "checkpoints": Checkpoint.objects.filter(experiment=experiment).count(),
        "metrics_iteration": latest.iteration if latest else None,
        "metrics": metrics,
        "eval": evaluation,
        "error": experiment.error,
        "created_at": experiment.created_at.isoformat(),
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "finished_at": experiment.finished_at.isoformat() if experiment.finished_at else None,
    }


def _latest_metrics(experiment, split):
    """``{name: value}`` of the last iteration with metric points of ``split``, plus its
    ``"iteration"``; empty when there are none yet."""
    from experiments.models import MetricPoint

    points = MetricPoint.objects.filter(experiment=experiment, split=split)
    latest = points.order_by("-iteration").values_list("iteration", flat=True).first()
    if latest is None:
        return {}
    return dict(points.filter(iteration=latest).values_list("name", "value"))
