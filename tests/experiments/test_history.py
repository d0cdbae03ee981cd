"""Recorded histories: what the page tests and the page benchmark build their data from."""

import pytest
from django.core.management import call_command

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Episode, Experiment, MetricPoint, Step, TaskSuite

pytestmark = pytest.mark.django_db


@pytest.fixture
def suite():
    load_builtin_suites()
    return TaskSuite.objects.get(name="atlassian-core")


def test_a_history_has_the_episodes_steps_and_curves_a_run_records(suite, make_user):
    experiment = record_history(
        owner=make_user(), suite=suite, iterations=6, tasks_per_iteration=3, group_size=4, eval_every=3
    )
    train = Episode.objects.filter(experiment=experiment, split="train")
    assert train.count() == 6 * 3 * 4
    # a held-out evaluation of every task after iterations 3 and 6
    assert Episode.objects.filter(experiment=experiment, split="test").count() == 2 * suite.tasks.count()
    assert experiment.episodes_planned == Episode.objects.filter(experiment=experiment).count()
    assert Step.objects.filter(episode__experiment=experiment).count() >= train.count()
    assert set(
        MetricPoint.objects.filter(experiment=experiment, split="test").values_list("iteration", flat=True)
    ) == {3, 6}
    assert MetricPoint.objects.filter(experiment=experiment, name="reward_mean").count() == 6
    assert experiment.checkpoints.count() == 6 and experiment.status == Experiment.COMPLETED


def test_the_same_seed_records_the_same_rewards(suite, make_user):
    owner = make_user()
    rewards = [
        list(
            record_history(owner=owner, suite=suite, iterations=3, seed=7)
            .episodes.order_by("iteration__index", "task", "variant_index", "sample_index")
            .values_list("reward", flat=True)
        )
        for _ in range(2)
    ]
    assert rewards[0] == rewards[1]


def test_the_command_records_about_the_episodes_asked_for(suite, make_user, capsys):
    make_user("demo")
    call_command("history", episodes=256, experiments=2, steps_per_episode=2, eval_every=0)
    assert Episode.objects.filter(split="train").count() == 256
    assert capsys.readouterr().out.count("experiment ") == 2
