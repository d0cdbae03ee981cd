"""Experiments survive crashes: a worker process killed with SIGKILL in the middle of a rollout or
a train task, a whole worker killed with its pool (its messages lost with it), and workers stopped
and started again mid-run. Real workers, tiny-random."""

import os
import signal
import time
from pathlib import Path

from experiments.models import Checkpoint, Episode
from experiments.suites import save_suite
from tests.experiments.test_orchestration import EXPECTED_EPISODES, SUITE, launch, wait_until_finished
from tests.workers import kill_worker, start_worker, stop_worker, wait_for_ping


def active_pid(task_name, worker="test", timeout=150):
    """The pool process of ``worker`` running a ``task_name`` task right now."""
    from rlvr_site.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, tasks in (app.control.inspect(timeout=0.5).active() or {}).items():
            for task in tasks if name.startswith(f"{worker}@") else ():
                if task["name"].endswith(f".{task_name}") and task.get("worker_pid"):
                    return task["worker_pid"]
    raise AssertionError(f"no {task_name} ran on {worker} within {timeout} s")


def assert_completed_exactly(experiment, checkpoints=2):
    assert experiment.status == "completed", experiment.traceback
    assert Episode.objects.filter(experiment=experiment).count() == EXPECTED_EPISODES
    assert Checkpoint.objects.filter(experiment=experiment).count() == checkpoints
    for iteration in experiment.iteration_set.all():  # every group whole: samples 0 .. G-1, once each
        for task, variant in iteration.groups:
            samples = iteration.episodes.filter(task_id=task, variant_index=variant, split="train")
            assert sorted(samples.values_list("sample_index", flat=True)) == [0, 1]


def test_a_rollout_process_killed_mid_task_loses_and_duplicates_nothing(celery_worker, make_user):
    suite = save_suite(SUITE.read_text())
    # Longer turns, so that a rollout is still running when the kill lands.
    experiment = launch(make_user, suite, max_turns=2, max_new_tokens=48)

    pid = active_pid("rollout_group")
    os.kill(pid, signal.SIGKILL)
    wait_until_finished(experiment, timeout=120)

    assert_completed_exactly(experiment)
    assert f"pid:{pid} exited with 'signal 9 (SIGKILL)'" in Path(celery_worker.log_path).read_text()


def test_a_train_process_killed_mid_update_trains_again_from_the_last_checkpoint(transactional_db, make_user):
    from rlvr_site.celery import app

    app.control.purge()
    rollout, train = (
        start_worker("roll", queues="rollout"),
        start_worker("train", queues="train", concurrency=1),
    )
    try:
        wait_for_ping("roll")
        wait_for_ping("train")
        experiment = launch(make_user, save_suite(SUITE.read_text()))

        pid = active_pid("train_iteration", worker="train")  # its first: loading the model, then training
        os.kill(pid, signal.SIGKILL)
        wait_until_finished(experiment, timeout=120)
    finally:
        stop_worker(rollout)
        stop_worker(train)

    assert_completed_exactly(experiment)
    assert f"pid:{pid} exited with 'signal 9 (SIGKILL)'" in Path(train.log_path).read_text()


def test_workers_stopped_and_started_again_carry_the_experiment_on(transactional_db, make_user):
    from rlvr_site.celery import app

    app.control.purge()
    worker = start_worker("first")
    try:
        wait_for_ping("first")
        experiment = launch(make_user, save_suite(SUITE.read_text()))
        deadline = time.monotonic() + 60
        while not Episode.objects.filter(experiment=experiment).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop_worker(worker)  # a warm shutdown: the tasks in flight finish, the rest wait in the broker
    experiment.refresh_from_db()
    assert experiment.status == "running" and experiment.checkpoints.count() < 2

    worker = start_worker("second")
    try:
        wait_until_finished(experiment, timeout=120)
    finally:
        stop_worker(worker)

    assert_completed_exactly(experiment)


def test_a_whole_worker_killed_with_its_pool_is_recovered_by_a_fresh_worker(transactional_db, make_user):
    """The messages the dead worker held are gone (filesystem transport) or unacknowledged until
    Redis's visibility timeout (an hour): the fresh worker's stall detector dispatches the
    iteration again."""
    from rlvr_site.celery import app

    app.control.purge()
    doomed = start_worker("doomed")
    try:
        wait_for_ping("doomed")
        experiment = launch(make_user, save_suite(SUITE.read_text()), max_turns=2, max_new_tokens=48)
        active_pid("rollout_group", worker="doomed")
    finally:
        kill_worker(doomed)
    experiment.refresh_from_db()
    assert experiment.status in ("queued", "running") and experiment.checkpoints.count() < 2

    fresh = start_worker("fresh")
    try:
        wait_until_finished(experiment, timeout=180)
    finally:
        stop_worker(fresh)

    assert_completed_exactly(experiment)
    assert experiment.iteration_set.filter(redispatches__gt=0).exists()
    assert "stalled, dispatched again" in Path(fresh.log_path).read_text()
