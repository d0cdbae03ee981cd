"""Celery tasks of the experiments app.

Names follow the routing rule of rlvr_site/celery.py: ``rollout_*`` run on the ``rollout``
queue, ``train_*`` on the ``train`` queue. Tasks take ids and plain values, never objects.
"""

import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import replace

from celery import shared_task
from celery.signals import worker_process_init, worker_ready

from experiments.policies import experiment_config, experiment_system_prompt, set_torch_threads, worker_policy


@shared_task(bind=True)
def rollout_probe(self, index):
    """One leg of the worker self-check: proves a rollout worker picks up work."""
    return {"index": index, "worker": self.request.hostname or socket.gethostname(), "pid": os.getpid()}


@shared_task(bind=True)
def train_probe(self, results):
    """The self-check's chord body: proves a train worker runs after every rollout finished."""
    return {
        "rollouts": len(results),
        "indexes": sorted(result["index"] for result in results),
        "rollout_workers": sorted({result["worker"] for result in results}),
        "train_worker": self.request.hostname or socket.gethostname(),
    }


@worker_process_init.connect
def _on_worker_process_init(**_kwargs):
    set_torch_threads()


@worker_ready.connect
def _on_worker_ready(**_kwargs):
    """Each worker looks for stalled experiments when it starts and then periodically
    (experiments.recovery): the messages a dead worker held are not waited for."""
    from experiments.recovery import start_detector

    start_detector()


# --- Experiments ----------------------------------------------------------------------------------
# One iteration = a chord of rollout_group tasks (one per task-variant group of G samples) and a
# train_iteration body (experiments.services.schedule_iteration). Both are idempotent: a group is
# stored once (experiments.rollouts), and an iteration whose checkpoint exists is not trained
# again. Both check the experiment's status first, so pause and cancel take effect at the next
# task boundary, and both beat while they run (experiments.recovery), so that an iteration whose
# messages were lost with a dead worker is told apart from one that is busy.


class ExperimentStopped(Exception):
    """The experiment is paused, cancelled or finished: the task does nothing."""


def _active_experiment(experiment_id):
    """The experiment, running from its first task on; ExperimentStopped unless it is active."""
    from django.utils import timezone

    from experiments.models import Experiment

    experiment = Experiment.objects.select_related("suite").get(pk=experiment_id)
    if experiment.status not in ("queued", "running"):
        raise ExperimentStopped(experiment.status)
    if experiment.status == "queued":
        Experiment.objects.filter(pk=experiment_id, status="queued").update(
            status="running", started_at=timezone.now()
        )
        experiment.refresh_from_db()
    return experiment


def _stopped_iteration(experiment_id, iteration_index, stopped, exclude=()):
    """A stopped experiment's train body marks the iteration paused or cancelled."""
    from experiments.models import Iteration

    state = "cancelled" if str(stopped) == "cancelled" else "paused"
    iterations = Iteration.objects.filter(experiment_id=experiment_id, index=iteration_index)
    iterations.exclude(state__in=exclude).update(state=state)


@contextmanager
def failures_mark_the_experiment(experiment_id):
    """Any exception in a task body marks the experiment failed with the traceback, then is
    re-raised so Celery records it too. ExperimentStopped ends the task quietly."""
    from experiments.services import fail_experiment

    try:
        yield
    except ExperimentStopped:
        return
    except Exception as error:
        fail_experiment(experiment_id, f"{type(error).__name__}: {error}", traceback.format_exc())
        raise


@shared_task(bind=True)
def rollout_group(self, experiment_id, iteration_index, task_pk, variant_index, split="train"):
    """Sample G episodes of one task variant with the iteration's policy version and store them
    with their steps. A group already stored is not sampled again (a redelivered task), and one
    stored meanwhile by another copy of this task is not stored twice."""
    from experiments.models import Episode, Iteration, Task
    from experiments.recovery import heartbeat
    from experiments.rollouts import group_variant, store_group

    with failures_mark_the_experiment(experiment_id):
        experiment = _active_experiment(experiment_id)
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        hp = experiment.hyperparameters
        group_size = hp["group_size"] if split == "train" else 1
        key = {
            "experiment": experiment,
            "iteration": iteration,
            "task_id": task_pk,
            "variant_index": variant_index,
            "split": split,
        }
        if Episode.objects.filter(**key).count() >= group_size:
            return {"skipped": "stored"}
        with heartbeat(iteration.pk):  # from here on: the first task of a process imports torch
            from experiments.training import sample_group

            config = experiment_config(experiment)
            spec = experiment.suite.spec()
            variant = group_variant(spec, Task.objects.get(pk=task_pk), split, variant_index)
            # Training samples the iteration's policy; an evaluation, the one it saved (for the
            # evaluation before training and for "eval" experiments, the base policy).
            version = iteration.policy_version
            if split != "train" and iteration.phase != "eval":
                version = iteration.index
            system = experiment_system_prompt(experiment, spec, config)
            policy, _entry = worker_policy(experiment, version, config, system)
            started = time.perf_counter()
            settings = config.rollout(variant.max_turns)
            if split != "train":  # held-out evaluation: greedy, the policy's best guess (trainer.evaluate)
                settings = replace(settings, sampling=replace(settings.sampling, temperature=0.0))
            episodes = sample_group(policy, variant, group_size, settings, keep_worlds=True)
            seconds = time.perf_counter() - started
            stored = store_group(key, group_size, version, episodes, seconds, hp.get("keep_worlds", "failed"))
        if not stored:
            return {"skipped": "stored meanwhile"}
        return {"episodes": len(episodes), "seconds": seconds}


@shared_task(bind=True)
def train_iteration(self, _results, experiment_id, iteration_index):
    """The chord's body: one update (GRPO on the iteration's episodes, or an SFT epoch), checkpoint
    version ``iteration_index``, its metric points; then the evaluation, the next iteration or the
    end. A checkpoint already saved (a redelivered task) is not trained again, an iteration being
    trained by a live task (it beats) is left to it (``_claim_training``), and one already done is
    left alone."""
    from django.db import transaction

    from experiments.models import Checkpoint, Iteration, MetricPoint
    from experiments.recovery import heartbeat
    from experiments.services import advance_experiment, evaluation_points, schedule_evaluation
    from experiments.updates import train_update

    with failures_mark_the_experiment(experiment_id):
        try:
            experiment = _active_experiment(experiment_id)
        except ExperimentStopped as stopped:
            _stopped_iteration(experiment_id, iteration_index, stopped, exclude=("done",))
            raise
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        version = iteration_index
        trained = Checkpoint.objects.filter(experiment=experiment, version=version).exists()
        if trained and iteration.state in ("evaluating", "done"):
            return {"skipped": iteration.state}
        if not trained:
            stored = iteration.episodes.filter(split="train").count()
            if stored < iteration.episodes_expected:  # an older chord of a paused-then-resumed iteration
                return {"waiting": f"{stored} of {iteration.episodes_expected} episodes"}
            if not _claim_training(iteration, stored):
                return {"skipped": "being trained"}
            started = time.perf_counter()
            with heartbeat(iteration.pk):
                train_update(experiment, iteration, version)
            Iteration.objects.filter(pk=iteration.pk).update(train_seconds=time.perf_counter() - started)
        with transaction.atomic():
            if iteration_index in evaluation_points(experiment):
                schedule_evaluation(experiment, iteration_index)
            else:
                advance_experiment(experiment, iteration_index)
        points = MetricPoint.objects.filter(experiment=experiment, iteration=iteration_index)
        return {"iteration": iteration_index, "metrics": dict(points.values_list("name", "value"))}


def _claim_training(iteration, stored):
    """Mark the iteration as being trained by this task, unless a live task trains it (one that
    beat in the last four heartbeats); wait while it lives, up to RLVR_STALL_SECONDS. A train
    process killed mid-update stops beating, so its redelivered task takes over within four beats.
    False when the other task finished the checkpoint, or is still alive at the deadline."""
    from datetime import timedelta

    from django.utils import timezone

    from experiments.models import Checkpoint, Iteration
    from experiments.recovery import heartbeat_seconds, stall_seconds

    alive = timedelta(seconds=4 * heartbeat_seconds())
    deadline = time.monotonic() + stall_seconds()
    while True:
        now = timezone.now()
        claimed = (
            Iteration.objects.filter(pk=iteration.pk)
            .exclude(state="training", heartbeat_at__gte=now - alive)
            .update(state="training", rollouts_finished_at=now, episodes_done=stored, heartbeat_at=now)
        )
        if claimed:
            return True
        finished = Checkpoint.objects.filter(experiment_id=iteration.experiment_id, version=iteration.index)
        if finished.exists() or time.monotonic() > deadline:
            return False
        time.sleep(heartbeat_seconds())


@shared_task(bind=True)
def train_after_evaluation(self, _results, experiment_id, iteration_index):
    """The evaluation chord's body: the held-out reward and success (overall and per task) as
    metric points of split "test", then the next iteration or the end."""
    from django.db import transaction

    from experiments.models import Iteration, MetricPoint
    from experiments.services import advance_experiment
    from experiments.updates import evaluation_figures

    with failures_mark_the_experiment(experiment_id):
        try:
            experiment = _active_experiment(experiment_id)
        except ExperimentStopped as stopped:
            _stopped_iteration(experiment_id, iteration_index, stopped)
            raise
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        if iteration.state == "done":  # a second copy of this chord
            return {"skipped": "done"}
        episodes = list(iteration.episodes.filter(split="test").select_related("task"))
        if len(episodes) < len(iteration.eval_groups):
            return {"waiting": f"{len(episodes)} of {len(iteration.eval_groups)} evaluation episodes"}
        numbers = evaluation_figures(episodes)
        with transaction.atomic():
            for name, value in numbers.items():
                MetricPoint.objects.update_or_create(
                    experiment=experiment,
                    split="test",
                    name=name,
                    iteration=iteration_index,
                    defaults={"value": value},
                )
            advance_experiment(experiment, iteration_index)
        return {"iteration": iteration_index, "eval": numbers}
