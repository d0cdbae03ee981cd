"""Each task's last check: kept by ``suites check`` and by the task page's button (the same
service), shown on the suite page (in a fixed number of queries) and on the task page."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from experiments.models import Task, TaskCheck
from experiments.suites import save_suite

SUITES = Path(__file__).parent / "suites"
ORACLE = (SUITES / "jira_oracle.yaml").read_text()
# Without its no-collateral check, the create task's extra-delete mutant still scores 1.0.
WEAK = ORACLE.replace('      - no_collateral: ["issue:new"]\n', "")

pytestmark = pytest.mark.django_db


def check_command(*args):
    call_command("suites", "check", "--suite", "jira-oracle", "--sample", "1", *args)


def test_the_command_keeps_each_task_s_last_check(capsys):
    save_suite(ORACLE)
    check_command("--task", "create-bug")

    check = TaskCheck.objects.get(task__task_id="create-bug")
    assert (check.passed, check.failed, check.source, check.checked_by) == (2, 0, "command", None)
    assert (check.sample, check.splits) == (1, ["train", "test"])
    assert [r["key"] for r in check.results] == ["create-bug/train/0", "create-bug/test/0"]
    printed = capsys.readouterr().out
    assert check.lines.splitlines()[0] in printed
    assert check.lines.splitlines()[-1] == "2 passed, 0 failed"
    assert TaskCheck.objects.count() == 1  # only the task that was checked


def test_a_new_check_replaces_the_last_one():
    save_suite(ORACLE)
    check_command("--task", "create-bug")
    first = TaskCheck.objects.get()
    check_command("--task", "create-bug", "--split", "train")

    again = TaskCheck.objects.get()
    assert again.pk == first.pk and again.checked_at > first.checked_at
    assert (again.passed, again.splits) == (1, ["train"])


def test_a_failed_check_is_kept_with_its_failures():
    save_suite(WEAK)
    with pytest.raises(CommandError, match="0 passed, 2 failed"):
        check_command("--task", "create-bug")

    check = TaskCheck.objects.get()
    assert (check.passed, check.failed, check.ok) == (0, 2, False)
    assert any("extra delete" in f for f in check.results[0]["failures"])
    assert check.results[0]["line"].startswith("FAIL jira-oracle/create-bug/train/0")


def test_saturated_variants_are_kept_with_the_check():
    save_suite(ORACLE)
    check_command("--task", "read-priority")

    check = TaskCheck.objects.get()
    assert check.ok and check.saturated
    assert check.saturated[0].startswith("train/0: mutation 'stop early'")


def test_a_file_checked_without_storing_it_keeps_nothing(tmp_path):
    path = tmp_path / "oracle.yaml"
    path.write_text(ORACLE)
    call_command("suites", "check", "--file", str(path), "--task", "create-bug", "--sample", "1")
    assert not TaskCheck.objects.exists()


def test_the_page_s_button_keeps_the_check_with_its_operator(operator_client):
    save_suite(ORACLE)
    response = operator_client.post(reverse("suite-check", args=["jira-oracle", "create-bug"]))
    assert response.status_code == 200

    check = TaskCheck.objects.get()
    assert (check.source, check.checked_by.username, check.sample) == ("page", "olivia", 1)
    html = response.content.decode()
    assert 'id="last-check"' in html and "from this page by olivia" in html
    assert "ok   jira-oracle/create-bug/train/0 oracle=1.000" in html


def test_the_suite_page_shows_each_task_s_last_check(viewer):
    save_suite(ORACLE)
    save_suite(WEAK.replace("suite: jira-oracle", "suite: weak", 1))
    check_command("--task", "read-priority")
    with pytest.raises(CommandError):
        call_command("suites", "check", "--suite", "weak", "--task", "create-bug", "--sample", "1")

    html = viewer.get(reverse("suite", args=["jira-oracle"])).content.decode()
    link = reverse("suite-task", args=["jira-oracle", "read-priority"]) + "#last-check"
    assert f'<a href="{link}"><span class="tag ok">2 passed</span></a>' in html
    assert "2 saturated" in html
    assert html.count("never checked") == 3  # the other three tasks

    weak = viewer.get(reverse("suite", args=["weak"])).content.decode()
    assert '<span class="tag fail">2 failed</span> · 0 passed' in weak


def test_the_task_page_shows_the_last_check_and_says_when_the_task_changed_since(viewer):
    save_suite(ORACLE)
    url = reverse("suite-task", args=["jira-oracle", "create-bug"])
    assert "Never checked." in viewer.get(url).content.decode()
    check_command("--task", "create-bug")

    html = viewer.get(url).content.decode()
    assert "2 passed, 0 failed" in html and "by <code>suites check</code>" in html
    assert "wrong entity (project WEB → MOB)" in html
    assert "edited since" not in html
    save_suite(ORACLE.replace("label triage", "label triaged"))
    assert "The task was edited since this check ran." in viewer.get(url).content.decode()


def test_the_suite_page_costs_the_same_queries_with_checks_on_every_task(
    viewer, django_assert_max_num_queries
):
    save_suite(ORACLE)
    viewer.get(reverse("suite", args=["jira-oracle"]))  # the seed world is loaded once
    with django_assert_max_num_queries(12) as few:
        viewer.get(reverse("suite", args=["jira-oracle"]))
    for task in Task.objects.all():
        TaskCheck.objects.create(
            task=task,
            checked_at=task.suite.updated_at,
            passed=3,
            failed=0,
            splits=["train", "test"],
            results=[],
            spec_hash=task.spec_hash(),
            source=TaskCheck.COMMAND,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = viewer.get(reverse("suite", args=["jira-oracle"])).content.decode()
    assert html.count('<span class="tag ok">3 passed</span>') == Task.objects.count()


def test_a_deleted_task_takes_its_check_with_it():
    save_suite(ORACLE)
    check_command("--task", "create-bug")
    assert TaskCheck.objects.exists()
    lines = ORACLE.split("\n  - id: ")
    save_suite("\n  - id: ".join(line for line in lines if not line.startswith("create-bug")))
    assert not TaskCheck.objects.exists()
