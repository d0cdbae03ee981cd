"""The suites command: load files, check every variant of a suite."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from experiments.models import TaskSuite

SUITES = Path(__file__).parent / "suites"

pytestmark = pytest.mark.django_db


def test_load_stores_a_suite_and_reports_its_tasks(capsys):
    call_command("suites", "load", str(SUITES / "example.yaml"), "--builtin")
    assert capsys.readouterr().out == f"example: 3 task(s) from {SUITES / 'example.yaml'}\n"
    assert TaskSuite.objects.get(name="example").builtin


def test_load_names_the_line_of_a_mistake(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((SUITES / "example.yaml").read_text().replace("max_calls: 6", "max_calls: six"))
    with pytest.raises(
        CommandError, match="line 42, column 20: 'max' of check 'max_calls' should be a whole number"
    ):
        call_command("suites", "load", str(broken))
    assert not TaskSuite.objects.exists()


def test_check_prints_a_line_per_variant_and_the_count(capsys):
    call_command("suites", "load", str(SUITES / "jira_oracle.yaml"))
    capsys.readouterr()
    call_command("suites", "check", "--suite", "jira-oracle")
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "12 passed, 0 failed"  # 4 tasks x (2 train + 1 test)
    assert lines[0] == "ok   jira-oracle/transition-new-issue/train/0 oracle=1.000"
    assert len([line for line in lines if line.startswith(("ok ", "FAIL "))]) == 12


def test_check_flags_a_task_whose_mutants_score_close_to_the_oracle(capsys):
    call_command("suites", "load", str(SUITES / "jira_oracle.yaml"))
    capsys.readouterr()
    call_command("suites", "check", "--suite", "jira-oracle", "--task", "read-priority", "--sample", "1")
    lines = capsys.readouterr().out.splitlines()
    # The dense preset's 0.2 for calls is all that a guessed answer without the read loses.
    assert "     ! saturated: mutation 'stop early' scores 0.900, close to the oracle" in lines
    assert lines[-2].startswith("saturated: jira-oracle/read-priority: train/0: mutation 'stop early'")
    assert lines[-1] == "2 passed, 0 failed"


def test_check_fails_with_the_variants_that_fail(tmp_path, capsys):
    weak = tmp_path / "weak.yaml"
    text = (SUITES / "jira_oracle.yaml").read_text()
    weak.write_text(text.replace('      - no_collateral: ["issue:new"]\n', ""))
    with pytest.raises(CommandError, match=r"^9 passed, 3 failed$"):
        call_command("suites", "check", "--file", str(weak), "--json")
    doc = json.loads(capsys.readouterr().out)
    failing = [v for v in doc["variants"] if not v["passed"]]
    assert {v["key"].split("/")[0] for v in failing} == {"create-bug"}
    assert "extra delete" in failing[0]["failures"][0]
