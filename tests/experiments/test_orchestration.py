"""Experiments on Celery: the lifecycle, the iteration chord, idempotent tasks, progress.

The first tests call the task functions in this process (on_commit never fires inside a test's
transaction, so nothing is dispatched); the last ones run real worker processes on the configured
broker (the embedded one locally, Redis in CI) with the tiny-random model.
"""

import io
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from experiments.models import Checkpoint, Episode, Experiment, Iteration, MetricPoint, Step
from experiments.policies import experiment_config, experiment_system_prompt, local_checkpoint, worker_policy
from experiments.services import (
    ExperimentError,
    cancel_experiment,
    experiment_progress,
    pause_experiment,
    resume_experiment,
    start_experiment,
)
from experiments.suites import save_suite
from experiments.tasks import rollout_group, train_after_evaluation, train_iteration
from experiments.updates import grpo_reference
from trainer.models import adapter_weights

SUITE = Path(__file__).parent / "suites" / "jira_oracle.yaml"
# Tiny everything: one task, two train variants, one short turn; orchestration is the point.
TINY = {
    "tasks": "read-priority",
    "train_variants": 2,
    "iterations": 2,
    "group_size": 2,
    "tasks_per_iteration": 2,
    "max_turns": 1,
    "max_new_tokens": 4,
    "tool_docs": "used",
    "lora_rank": 4,
}
EXPECTED_EPISODES = 2 * 2 * 2  # iterations x tasks_per_iteration x group_size


@pytest.fixture
def suite(db):
    return save_suite(SUITE.read_text())


def launch(make_user, suite, **overrides):
    return start_experiment(make_user("olivia"), suite, "tiny-random", "grpo", {**TINY, **overrides})


def run_iteration_here(experiment, index):
    """The iteration's chord, run in this process: every rollout group, then the train body; then
    the evaluation's chord when one was scheduled."""
    iteration = Iteration.objects.get(experiment=experiment, index=index)
    result = None
    if iteration.phase != "eval":
        results = [rollout_group(experiment.pk, index, task, variant) for task, variant in iteration.groups]
        result = train_iteration(results, experiment.pk, index)
        iteration.refresh_from_db()
    if iteration.state == "evaluating":
        results = [rollout_group(experiment.pk, index, t, v, "test") for t, v in iteration.eval_groups]
        result = train_after_evaluation(results, experiment.pk, index)
    return result


# --- In this process -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_start_plans_the_first_iteration_and_the_episode_total(make_user, suite):
    experiment = launch(make_user, suite)

    assert experiment.status == "queued" and experiment.hyperparameters["group_size"] == 2
    assert experiment.hyperparameters["learning_rate"] == 2e-5  # a default filled in
    (iteration,) = experiment.iteration_set.all()
    assert iteration.index == 1 and iteration.policy_version == 0 and len(iteration.groups) == 2
    progress = experiment_progress(experiment)
    assert progress["episodes_total"] == EXPECTED_EPISODES and progress["episodes_done"] == 0
    assert progress["iteration"] == 1 and progress["iterations"] == 2


@pytest.mark.django_db
def test_start_rejects_bad_hyperparameters_with_every_problem(make_user, suite):
    with pytest.raises(ExperimentError) as caught:
        launch(make_user, suite, group_size=1, colour="blue", temperature="hot")
    message = str(caught.value)
    assert "group_size must be at least 2" in message
    assert "unknown hyperparameter 'colour'" in message
    assert "temperature is a number, not 'hot'" in message
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_start_refuses_an_empty_run_and_an_unknown_suite(make_user, suite):
    with pytest.raises(ExperimentError, match="sft has nothing to do: set sft_epochs to 1 or more"):
        start_experiment(make_user("bob"), suite, "tiny-random", "sft", {**TINY, "sft_epochs": 0})
    with pytest.raises(ExperimentError, match="no suite named 'nope'"):
        start_experiment(make_user("carol"), "nope", "tiny-random", "grpo", TINY)


@pytest.mark.django_db
def test_two_iterations_in_process_write_episodes_steps_checkpoints_and_metrics(make_user, suite):
    experiment = launch(make_user, suite)

    run_iteration_here(experiment, 1)
    assert experiment_progress(experiment)["episodes_done"] == 4
    run_iteration_here(experiment, 2)

    experiment.refresh_from_db()
    assert experiment.status == "completed" and experiment.finished_at
    assert Episode.objects.filter(experiment=experiment).count() == EXPECTED_EPISODES
    assert list(Checkpoint.objects.filter(experiment=experiment).values_list("version", flat=True)) == [1, 2]
    for checkpoint in experiment.checkpoints.all():
        assert (Path(default_storage.path(checkpoint.path)) / "adapter_model.safetensors").is_file()
    assert set(Episode.objects.filter(iteration__index=2).values_list("policy_version", flat=True)) == {1}
    step = Step.objects.filter(episode__experiment=experiment).first()
    assert step.prompt_tokens > 0 and len(step.token_ids) == len(step.logprobs) > 0
    assert all(lp <= 0 for lp in step.logprobs)
    assert MetricPoint.objects.filter(experiment=experiment, name="reward_mean").count() == 2
    assert (
        MetricPoint.objects.filter(experiment=experiment, name="reward_per_task/read-priority").count() == 2
    )
    progress = experiment_progress(experiment)
    assert progress["episodes_done"] == progress["episodes_total"] == EXPECTED_EPISODES
    assert progress["status"] == "completed" and progress["eta_seconds"] == 0.0
    assert progress["checkpoints"] == 2 and "reward_mean" in progress["metrics"]


@pytest.mark.django_db
def test_held_out_evaluation_before_training_every_n_iterations_and_at_the_end(make_user, suite):
    experiment = launch(make_user, suite, iterations=3, eval_every=2, eval_variants=1)
    # Evaluated before training (iteration 0, the base policy), after 2 and after 3.
    assert experiment_progress(experiment)["episodes_total"] == 3 * 2 * 2 + 3 * 1
    (before,) = experiment.iteration_set.all()
    assert (before.index, before.phase, before.state, before.policy_version) == (0, "eval", "evaluating", 0)
    assert experiment_progress(experiment)["iteration"] == 0

    run_iteration_here(experiment, 0)
    assert experiment_progress(experiment)["iteration"] == 1 and experiment_progress(experiment)["eval"]
    for index in (1, 2, 3):
        run_iteration_here(experiment, index)

    experiment.refresh_from_db()
    assert experiment.status == "completed"
    evaluated = Episode.objects.filter(experiment=experiment, split="test")
    assert list(evaluated.values_list("iteration__index", "policy_version", "sample_index")) == [
        (0, 0, 0),
        (2, 2, 0),
        (3, 3, 0),
    ]
    points = MetricPoint.objects.filter(experiment=experiment, split="test", name="reward/read-priority")
    assert list(points.values_list("iteration", flat=True)) == [0, 2, 3]
    progress = experiment_progress(experiment)
    assert progress["episodes_done"] == progress["episodes_total"] == 15
    assert progress["eval"].keys() >= {"reward", "success", "reward/read-priority"}


@pytest.mark.django_db
def test_sft_then_grpo_trains_on_demonstrations_first_then_samples(make_user, suite):
    experiment = start_experiment(
        make_user("olivia"), suite, "tiny-random", "sft+grpo", {**TINY, "sft_epochs": 1, "iterations": 1}
    )
    assert experiment.iterations == 2 and experiment_progress(experiment)["episodes_total"] == 4

    run_iteration_here(experiment, 1)
    run_iteration_here(experiment, 2)

    experiment.refresh_from_db()
    assert experiment.status == "completed", experiment.traceback
    assert list(experiment.iteration_set.values_list("phase", "policy_version")) == [("sft", 0), ("grpo", 1)]
    assert list(experiment.checkpoints.values_list("version", flat=True)) == [1, 2]
    sft = dict(MetricPoint.objects.filter(experiment=experiment, iteration=1).values_list("name", "value"))
    assert sft["loss"] > 0 and sft["demonstrations"] == 2
    assert set(Episode.objects.filter(experiment=experiment).values_list("policy_version", flat=True)) == {1}
    # GRPO went on with the SFT epoch's Adam moments, at GRPO's own learning rate
    sft_state, grpo_state = (
        torch.load(local_checkpoint(experiment.pk, v) + ".optimizer.pt", weights_only=True) for v in (1, 2)
    )
    assert sft_state["state"] and grpo_state["state"][0]["step"] >= sft_state["state"][0]["step"] > 0
    assert grpo_state["param_groups"][0]["lr"] == experiment_config(experiment).grpo().learning_rate


@pytest.mark.django_db
def test_an_sft_experiment_runs_without_rollouts(make_user, suite):
    settings = {**TINY, "sft_epochs": 2, "sft_schedule": "linear", "sft_learning_rate": 0.004}
    experiment = start_experiment(make_user("olivia"), suite, "tiny-random", "sft", settings)
    assert experiment_progress(experiment)["episodes_total"] == 0

    run_iteration_here(experiment, 1)
    run_iteration_here(experiment, 2)

    experiment.refresh_from_db()
    assert experiment.status == "completed" and experiment.started_at, experiment.traceback
    assert list(experiment.checkpoints.values_list("version", flat=True)) == [1, 2]
    assert not Episode.objects.exists()
    # the schedule spans both epochs, each run by a task of its own: the second ends below the first
    rates = MetricPoint.objects.filter(experiment=experiment, name="learning_rate").order_by("iteration")
    first, second = rates.values_list("value", flat=True)
    assert first <= 0.004 and 0 < second < first


@pytest.mark.django_db
def test_an_eval_experiment_evaluates_the_base_policy_once(make_user, suite):
    experiment = start_experiment(
        make_user("olivia"), suite, "tiny-random", "eval", {**TINY, "eval_variants": 1}
    )
    assert experiment.iterations == 1 and experiment_progress(experiment)["episodes_total"] == 1

    run_iteration_here(experiment, 1)

    experiment.refresh_from_db()
    assert experiment.status == "completed", experiment.traceback
    assert list(Episode.objects.values_list("split", "policy_version")) == [("test", 0)]
    assert not experiment.checkpoints.exists()
    assert experiment_progress(experiment)["eval"].keys() >= {"reward", "success"}


@pytest.mark.django_db
def test_a_redelivered_rollout_task_does_not_duplicate_episodes(make_user, suite):
    experiment = launch(make_user, suite)
    task, variant = Iteration.objects.get(experiment=experiment, index=1).groups[0]

    first = rollout_group(experiment.pk, 1, task, variant)
    again = rollout_group(experiment.pk, 1, task, variant)

    assert first["episodes"] == 2 and again == {"skipped": "stored"}
    assert Episode.objects.filter(experiment=experiment).count() == 2


@pytest.mark.django_db
def test_a_redelivered_train_task_does_not_train_again(make_user, suite):
    experiment = launch(make_user, suite)
    run_iteration_here(experiment, 1)
    saved = Checkpoint.objects.get(experiment=experiment, version=1).created_at

    train_iteration([], experiment.pk, 1)

    assert Checkpoint.objects.get(experiment=experiment, version=1).created_at == saved
    assert Iteration.objects.filter(experiment=experiment).count() == 2


@pytest.mark.django_db
def test_an_exception_in_a_task_marks_the_experiment_failed_with_its_traceback(make_user, suite):
    experiment = launch(make_user, suite)

    with pytest.raises(ValueError, match="no train variant 99"):
        rollout_group(experiment.pk, 1, experiment.iteration_set.get().groups[0][0], 99)

    experiment.refresh_from_db()
    assert experiment.status == "failed" and experiment.finished_at
    assert (
        experiment.error == "ValueError: task jira-oracle/read-priority has no train variant 99 (it draws 2)"
    )
    assert (
        "Traceback (most recent call last)" in experiment.traceback
        and "rollout_group" in experiment.traceback
    )


@pytest.mark.django_db
def test_pause_and_cancel_take_effect_at_the_next_task(make_user, suite):
    experiment = launch(make_user, suite)
    task, variant = experiment.iteration_set.get().groups[0]

    pause_experiment(experiment)
    assert rollout_group(experiment.pk, 1, task, variant) is None
    assert not Episode.objects.exists()
    resume_experiment(experiment)
    assert experiment.status == "running"
    cancel_experiment(experiment)
    assert rollout_group(experiment.pk, 1, task, variant) is None
    train_iteration([], experiment.pk, 1)
    assert experiment.iteration_set.get().state == "cancelled"
    with pytest.raises(ExperimentError, match="is cancelled; it cannot become running"):
        resume_experiment(experiment)


@pytest.mark.django_db
def test_the_command_pauses_resumes_and_cancels_and_prints_progress(make_user, suite):
    experiment = launch(make_user, suite)

    def command(*args):
        out = io.StringIO()
        call_command("experiment", *args, str(experiment.pk), "--json", stdout=out)
        return json.loads(out.getvalue())

    assert command("pause")["status"] == "paused"
    assert command("resume")["status"] == "running"
    cancelled = command("cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert cancelled.keys() >= {
        "id",
        "iteration",
        "iterations",
        "episodes_done",
        "episodes_total",
        "eta_seconds",
    }
    with pytest.raises(CommandError, match="is cancelled; it cannot become paused"):
        command("pause")


@pytest.mark.django_db
def test_the_command_explains_a_bad_setting(make_user, suite):
    make_user("olivia")
    with pytest.raises(CommandError, match="--set takes key=value, not 'iterations'"):
        call_command("experiment", "start", "--suite", suite.name, "--owner", "olivia", "--set", "iterations")
    with pytest.raises(CommandError, match="group_size must be at least 2"):
        call_command(
            "experiment", "start", "--suite", suite.name, "--owner", "olivia", "--set", "group_size=1"
        )


# --- Real workers ----------------------------------------------------------------------------------


def wait_until_finished(experiment, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment.refresh_from_db()
        if experiment.finished:
            return experiment
        time.sleep(0.5)
    raise AssertionError(f"still {experiment.status} after {timeout} s: {experiment_progress(experiment)}")


def test_a_two_iteration_grpo_experiment_runs_through_celery(celery_worker, make_user):
    suite = save_suite(SUITE.read_text())
    make_user("olivia")
    out = io.StringIO()
    args = [f"--set={key}={value}" for key, value in TINY.items()]
    call_command("experiment", "start", "--suite", suite.name, "--model", "tiny-random", "--algo", "grpo",
                 "--owner", "olivia", *args, "--json", stdout=out)  # fmt: skip
    started = json.loads(out.getvalue())
    assert started["episodes_total"] == EXPECTED_EPISODES and started["status"] in ("queued", "running")
    experiment = Experiment.objects.get(pk=started["id"])

    seen = []
    deadline = time.monotonic() + 120
    while not experiment.finished and time.monotonic() < deadline:
        progress = experiment_progress(experiment)
        seen.append(progress["episodes_done"])
        assert progress["episodes_done"] <= progress["episodes_total"]
        time.sleep(0.3)
    wait_until_finished(experiment, timeout=1)

    assert experiment.status == "completed", experiment.traceback
    assert Episode.objects.filter(experiment=experiment).count() == EXPECTED_EPISODES
    assert Checkpoint.objects.filter(experiment=experiment).count() == 2
    assert seen == sorted(seen)  # progress never goes back
    out = io.StringIO()
    call_command("experiment", "status", str(experiment.pk), "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["status"] == "completed" and status["episodes_done"] == EXPECTED_EPISODES
    assert status["iteration"] == 2 and status["checkpoints"] == 2


def test_sft_then_grpo_with_a_final_evaluation_runs_on_the_workers(celery_worker, make_user):
    suite = save_suite(SUITE.read_text())
    overrides = {**TINY, "sft_epochs": 1, "iterations": 1, "eval_every": 5, "eval_variants": 1}
    experiment = start_experiment(make_user("olivia"), suite, "tiny-random", "sft+grpo", overrides)

    wait_until_finished(experiment)

    assert experiment.status == "completed", experiment.traceback
    assert list(experiment.checkpoints.values_list("version", flat=True)) == [1, 2]
    assert list(
        Episode.objects.filter(experiment=experiment, split="test").values_list("iteration__index")
    ) == [(0,), (2,)]  # the base policy, then the end
    progress = experiment_progress(experiment)
    assert progress["episodes_done"] == progress["episodes_total"] == 1 * 2 * 2 + 2
    assert progress["eval"].keys() >= {"reward", "success"}


def settled_episode_count(experiment, seconds=2.0):
    """The episode count once the tasks in flight are done (those after them do nothing)."""
    time.sleep(seconds)
    count = Episode.objects.filter(experiment=experiment).count()
    for _ in range(20):  # a group already generating may take a few seconds more to be stored
        time.sleep(1.5)
        now = Episode.objects.filter(experiment=experiment).count()
        if now == count:
            return count
        count = now
    raise AssertionError("still writing episodes after 30 s")


def test_pause_resume_and_cancel_a_running_experiment(celery_worker, make_user):
    suite = save_suite(SUITE.read_text())
    experiment = launch(make_user, suite, iterations=50)
    deadline = time.monotonic() + 60
    while not Episode.objects.filter(experiment=experiment).exists() and time.monotonic() < deadline:
        time.sleep(0.2)

    pause_experiment(experiment)
    paused = settled_episode_count(experiment)
    assert experiment_progress(experiment)["status"] == "paused"
    resume_experiment(experiment)
    while Episode.objects.filter(experiment=experiment).count() <= paused and time.monotonic() < deadline:
        time.sleep(0.2)
    cancel_experiment(experiment)
    cancelled = settled_episode_count(experiment)

    experiment.refresh_from_db()
    assert experiment.status == "cancelled" and paused < cancelled < 50 * 4
    assert cancelled % 2 == 0  # whole groups only
    progress = experiment_progress(experiment)
    assert progress["episodes_done"] == cancelled and progress["eta_seconds"] is None


@pytest.mark.django_db
def test_grpo_after_sft_takes_the_last_sft_checkpoint_as_its_kl_reference(make_user, suite):
    settings = {**TINY, "sft_epochs": 1, "iterations": 1, "kl_coef": 0.1, "sft_learning_rate": 0.01}
    experiment = start_experiment(make_user("olivia"), suite, "tiny-random", "sft+grpo", settings)
    run_iteration_here(experiment, 1)  # the SFT epoch: checkpoint version 1
    config = experiment_config(experiment)
    system = experiment_system_prompt(experiment, experiment.suite.spec(), config)
    sft = adapter_weights(worker_policy(experiment, 1, config, system)[0].model)
    model = worker_policy(experiment, 0, config, system)[0].model  # the same model, a fresh adapter
    own = adapter_weights(model)

    reference = grpo_reference(experiment, model, config.grpo())

    assert reference.keys() == sft.keys() and all(torch.equal(reference[n], sft[n]) for n in sft)
    assert any(not torch.equal(own[n], sft[n]) for n in sft)  # SFT moved the adapter
    assert all(torch.equal(own[n], p) for n, p in adapter_weights(model).items())  # left as it was
    assert grpo_reference(experiment, model, replace(config.grpo(), beta=0.0)) is None  # no KL, no reference
