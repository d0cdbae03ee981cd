"""Saving a suite: the TaskSuite and its Tasks in the database."""

from pathlib import Path

import pytest

from experiments.models import Task, TaskSuite
from experiments.suites import SuiteError, load_suite, save_suite, source_hash, variants

EXAMPLE = (Path(__file__).parent / "suites" / "example.yaml").read_text()

pytestmark = pytest.mark.django_db


def test_it_saves_a_suite_with_one_task_per_yaml_task():
    suite = save_suite(EXAMPLE, builtin=True)
    assert (suite.name, suite.version, suite.builtin) == ("example", 2, True)
    assert suite.source == EXAMPLE and suite.source_hash == source_hash(EXAMPLE)
    tasks = list(suite.tasks.all())
    assert [t.task_id for t in tasks] == ["transition-issue", "create-page", "read-priority"]
    assert [t.scenario for t in tasks] == ["ticket-transition", "page-create", "issue-read"]
    assert tasks[1].family_heldout and not tasks[0].family_heldout
    assert tasks[0].split_rule["holdout"] == ["summary"]
    assert tasks[0].task_spec() == load_suite(EXAMPLE).tasks[0]
    assert tasks[0].variants("train") == variants(load_suite(EXAMPLE).tasks[0], "train")


def test_saving_again_updates_the_suite_and_drops_removed_tasks():
    save_suite(EXAMPLE)
    shorter = EXAMPLE.split("  - id: create-page")[0].replace("version: 2", "version: 3")
    shorter = shorter.replace("holdout_families: [page-create]\n", "")
    suite = save_suite(shorter)
    assert TaskSuite.objects.count() == 1 and suite.version == 3
    assert list(Task.objects.values_list("task_id", flat=True)) == ["transition-issue"]
    assert suite.spec().tasks[0].id == "transition-issue"


def test_it_saves_nothing_from_a_broken_suite():
    with pytest.raises(SuiteError):
        save_suite(EXAMPLE.replace("max_calls: 6", "max_calls: six"))
    assert not TaskSuite.objects.exists()
