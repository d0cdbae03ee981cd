"""Stall detection (experiments.recovery), groups stored once, and the worlds kept for replay; in
this process (on_commit callbacks are captured, not run, so nothing is dispatched)."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from experiments import training
from experiments.models import Episode, Iteration
from experiments.recovery import beat, heartbeat, recover_stalled
from experiments.services import pause_experiment, start_experiment
from experiments.suites import save_suite
from experiments.tasks import rollout_group
from simulator.models import World
from tests.experiments.test_orchestration import SUITE, TINY, launch, run_iteration_here


@pytest.fixture
def suite(db):
    return save_suite(SUITE.read_text())


def quiet_for(experiment, seconds, state=None):
    """Make the experiment's current iteration look silent for ``seconds``."""
    past = timezone.now() - timedelta(seconds=seconds)
    iterations = Iteration.objects.filter(experiment=experiment)
    iterations.update(started_at=past, heartbeat_at=past, **({"state": state} if state else {}))


@pytest.mark.django_db
def test_a_silent_iteration_is_dispatched_again_once(make_user, suite, django_capture_on_commit_callbacks):
    experiment = launch(make_user, suite)
    quiet_for(experiment, 120)

    with django_capture_on_commit_callbacks() as dispatched:
        recovered = recover_stalled(60, check_queues=False)
        again = recover_stalled(60, check_queues=False)  # just dispatched: not stalled any more

    assert recovered == [{"experiment": experiment.pk, "iteration": 1, "state": "rolling"}]
    assert again == [] and len(dispatched) == 1
    assert Iteration.objects.get(experiment=experiment, index=1).redispatches == 1


@pytest.mark.django_db
def test_a_beating_paused_or_early_iteration_is_not_stalled(make_user, suite):
    owner = make_user("olivia")
    beating, paused, early = (start_experiment(owner, suite, "tiny-random", "grpo", TINY) for _ in range(3))
    quiet_for(beating, 120)
    beat(Iteration.objects.get(experiment=beating).pk)
    quiet_for(paused, 120)
    pause_experiment(paused)
    quiet_for(early, 30)

    assert recover_stalled(60, check_queues=False) == []


@pytest.mark.django_db
def test_heartbeat_beats_while_its_block_runs(make_user, suite):
    experiment = launch(make_user, suite)
    iteration = Iteration.objects.get(experiment=experiment)
    quiet_for(experiment, 120)

    with heartbeat(iteration.pk, every=3600):
        iteration.refresh_from_db()

    assert timezone.now() - iteration.heartbeat_at < timedelta(seconds=60)


@pytest.mark.django_db
def test_a_silent_train_step_is_trained_again(make_user, suite, django_capture_on_commit_callbacks):
    experiment = launch(make_user, suite)
    for task, variant in experiment.iteration_set.get().groups:
        rollout_group(experiment.pk, 1, task, variant)
    quiet_for(experiment, 120, state="training")  # its train task died without a checkpoint

    with django_capture_on_commit_callbacks():
        assert recover_stalled(60, check_queues=False)[0]["state"] == "training"
    assert Iteration.objects.get(experiment=experiment, index=1).state == "rolling"
    run_iteration_here(experiment, 1)

    assert experiment.checkpoints.count() == 1 and experiment.iteration_set.get(index=1).state == "done"


@pytest.mark.django_db
def test_the_command_recovers_and_prints_what_it_dispatched(
    make_user, suite, django_capture_on_commit_callbacks
):
    experiment = launch(make_user, suite)
    quiet_for(experiment, 120)
    out = io.StringIO()

    with django_capture_on_commit_callbacks():
        call_command("experiment", "recover", "--stalled-after", "60", "--json", stdout=out)

    assert json.loads(out.getvalue()) == [{"experiment": experiment.pk, "iteration": 1, "state": "rolling"}]


@pytest.mark.django_db
def test_a_group_finished_by_two_copies_of_its_task_is_stored_once(make_user, suite, monkeypatch):
    experiment = launch(make_user, suite)
    task, variant = experiment.iteration_set.get().groups[0]
    sample_group = training.sample_group

    def other_copy_finishes_first(*args, **kwargs):
        monkeypatch.setattr(training, "sample_group", sample_group)
        assert rollout_group(experiment.pk, 1, task, variant)["episodes"] == 2
        return sample_group(*args, **kwargs)

    monkeypatch.setattr(training, "sample_group", other_copy_finishes_first)
    result = rollout_group(experiment.pk, 1, task, variant)

    assert result == {"skipped": "stored meanwhile"}
    assert Episode.objects.filter(experiment=experiment).count() == 2
    kept = set(Episode.objects.values_list("world_slug", flat=True))
    assert World.objects.filter(is_template=False).count() == len(kept)  # the loser's worlds are gone


@pytest.mark.django_db
@pytest.mark.parametrize(("keep", "kept"), [("none", 0), ("failed", 2), ("all", 2)])
def test_keep_worlds_keeps_episode_worlds_for_replay(make_user, suite, keep, kept):
    experiment = launch(make_user, suite, keep_worlds=keep)
    task, variant = experiment.iteration_set.get().groups[0]

    rollout_group(experiment.pk, 1, task, variant)

    episodes = Episode.objects.filter(experiment=experiment)
    assert not any(e.success for e in episodes)  # tiny-random fails: "failed" keeps them all
    slugs = [e.world_slug for e in episodes if e.world_slug]
    assert len(slugs) == kept
    worlds = World.objects.filter(slug__in=slugs)
    assert worlds.count() == kept and set(worlds.values_list("outcome", flat=True)) <= {"failed"}
    assert World.objects.filter(is_template=False).count() == kept


@pytest.mark.django_db
def test_simworld_prune_deletes_kept_worlds(make_user, suite):
    experiment = launch(make_user, suite, keep_worlds="all")
    task, variant = experiment.iteration_set.get().groups[0]
    rollout_group(experiment.pk, 1, task, variant)
    World.objects.filter(is_template=False).update(created_at=timezone.now() - timedelta(days=8))

    call_command("simworld", "prune", "--older-than", "7d", stdout=io.StringIO())

    assert not World.objects.filter(is_template=False).exists()
    assert Episode.objects.filter(experiment=experiment).count() == 2  # the episodes stay


@pytest.mark.django_db
def test_checkpoints_go_through_the_storage_api_and_are_downloaded_once(make_user, suite, settings):
    import shutil

    from django.core.files.storage import default_storage

    from experiments import policies

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    experiment = launch(make_user, suite)
    run_iteration_here(experiment, 1)
    name = policies.checkpoint_name(experiment.pk, 1)
    assert default_storage.exists(f"{name}/adapter_model.safetensors")
    assert default_storage.exists(f"{name}/checkpoint.json") and default_storage.exists(
        f"{name}.optimizer.pt"
    )
    cache = policies.checkpoint_dir(experiment.pk, 1)[1]
    shutil.rmtree(cache)  # another host: nothing cached
    for entry in policies._POLICIES.values():
        entry["loaded"] = None

    run_iteration_here(experiment, 2)  # its rollouts and its update start from version 1

    experiment.refresh_from_db()
    assert experiment.status == "completed", experiment.traceback
    assert (Path(cache) / ".complete").is_file() and (Path(cache) / "adapter_model.safetensors").is_file()
    assert default_storage.exists(f"{policies.checkpoint_name(experiment.pk, 2)}/adapter_model.safetensors")


@pytest.mark.django_db
def test_a_train_task_leaves_a_beating_trainer_alone_and_takes_over_from_a_silent_one(
    make_user, suite, settings
):
    from experiments.tasks import train_iteration

    settings.RLVR_HEARTBEAT_SECONDS = 0.05  # alive: a beat in the last 0.2 s
    settings.RLVR_STALL_SECONDS = 0.5  # how long a second copy waits for it
    experiment = launch(make_user, suite)
    for task, variant in experiment.iteration_set.get().groups:
        rollout_group(experiment.pk, 1, task, variant)
    iteration = Iteration.objects.get(experiment=experiment, index=1)
    Iteration.objects.filter(pk=iteration.pk).update(
        state="training", heartbeat_at=timezone.now() + timedelta(hours=1)
    )

    assert train_iteration([], experiment.pk, 1) == {"skipped": "being trained"}
    assert not experiment.checkpoints.exists()

    Iteration.objects.filter(pk=iteration.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))
    assert train_iteration([], experiment.pk, 1)["iteration"] == 1
    assert experiment.checkpoints.count() == 1
