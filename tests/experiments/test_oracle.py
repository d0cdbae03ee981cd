"""Oracle and mutation testing on the acme seed, through the simulator's in-process client."""

from pathlib import Path

import pytest

from experiments.oracle import check_variant
from experiments.suites import load_suite, variants

SUITE = load_suite((Path(__file__).parent / "suites" / "jira_oracle.yaml").read_text())

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    from simulator.seeding import load_seed

    return load_seed("acme")


@pytest.mark.parametrize("task_id", [t.id for t in SUITE.tasks])
def test_every_task_is_solved_by_its_oracle_and_fails_its_self_tests(acme, task_id):
    (variant, *_) = variants(SUITE.task(task_id), "train", world=acme)
    report = check_variant(variant, template=acme)
    assert report.passed, report.failures
    assert report.oracle_reward == 1.0


def test_a_task_without_a_collateral_check_is_caught_by_the_destructive_mutation(acme):
    task = SUITE.task("create-bug")
    task.trace = [c for c in task.trace if c.type != "no_collateral"]
    (variant, *_) = variants(task, "train", world=acme)
    report = check_variant(variant, template=acme)
    assert [f for f in report.failures if "extra delete" in f], report.failures


def test_a_task_its_setup_already_solves_is_caught(acme):
    task = SUITE.task("transition-new-issue")
    task.expect[0].params["fields"] = {"status": "To Do"}  # what a new issue already has
    task.trace = [c for c in task.trace if c.type != "called"]
    (variant, *_) = variants(task, "train", world=acme)
    report = check_variant(variant, template=acme)
    assert "the world right after setup already passes (a no-op succeeds)" in report.failures


def test_a_check_that_accepts_the_wrong_status_is_caught_by_the_wrong_transition(acme):
    task = SUITE.task("transition-new-issue")
    task.vars["status"] = ["In Review"]
    task.expect[0].params["fields"] = {"status_category": "In Progress"}  # Blocked is too
    (variant, *_) = variants(task, "train", world=acme)
    report = check_variant(variant, template=acme)
    assert report.oracle_reward == 1.0
    assert [f for f in report.failures if f.startswith("mutation 'wrong transition' still scores 1.000")]


def test_a_check_that_ignores_the_project_is_caught_by_the_wrong_entity(acme):
    task = SUITE.task("create-bug")
    del task.expect[0].params["where"]["project"]
    (variant, *_) = variants(task, "train", world=acme)
    report = check_variant(variant, template=acme)
    assert report.oracle_reward == 1.0
    assert "mutation 'wrong entity (project WEB → MOB)' still scores 1.000 (success True)" in report.failures


def test_a_read_aimed_at_another_issue_fails_its_called_check(acme):
    (variant, *_) = variants(SUITE.task("read-priority"), "train", world=acme)
    report = check_variant(variant, template=acme)
    (name,) = [n for n in report.mutants if n.startswith("wrong entity")]
    assert report.mutants[name] < 1.0 and report.passed


def test_the_check_deletes_the_worlds_it_forked(acme):
    from simulator.models import World

    before = World.objects.count()
    (variant, *_) = variants(SUITE.task("transition-new-issue"), "train", world=acme)
    check_variant(variant, template=acme)
    assert World.objects.count() == before
