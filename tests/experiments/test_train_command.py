"""manage.py train on the tiny-random model and a small test suite: the JSON report's shape."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from simulator.models import World

SUITE = Path(__file__).parent / "suites" / "jira_oracle.yaml"

pytestmark = pytest.mark.django_db

# Tiny everything: one task, one held-out variant, one short turn; the report's shape is the point.
TINY = [
    "--suite",
    str(SUITE),
    "--model",
    "tiny-random",
    "--task",
    "read-priority",
    "--eval-variants",
    "1",
    "--train-variants",
    "2",
    "--max-turns",
    "1",
    "--max-new-tokens",
    "4",
    "--tool-docs",
    "used",
    "--seed",
    "0",
]


def train(tmp_path, *args):
    out = tmp_path / "results.json"
    call_command("train", *TINY, *args, "--json-out", str(out))
    return json.loads(out.read_text())


def assert_evaluation(summary):
    assert 0.0 <= summary["reward"] <= 1.0 and 0.0 <= summary["success"] <= 1.0
    assert summary["episodes"] == 1
    assert set(summary["per_task"]) == {"read-priority"}
    assert summary["per_task"]["read-priority"].keys() >= {"reward", "success", "episodes"}
    assert [v["key"] for v in summary["variants"]] == ["read-priority/test/0"]


def test_grpo_writes_the_report_with_one_entry_per_iteration(tmp_path, capsys):
    report = train(
        tmp_path,
        "--algo",
        "grpo",
        "--iterations",
        "1",
        "--group-size",
        "2",
        "--tasks-per-iteration",
        "1",
        "--eval-every",
        "0",
    )

    assert report.keys() == {"config", "iterations", "eval", "seconds"}
    assert report["config"]["algo"] == "grpo" and report["config"]["group_size"] == 2
    assert report["config"]["suite_name"] == "jira-oracle"
    (iteration,) = report["iterations"]
    assert iteration["iteration"] == 1 and iteration["phase"] == "grpo"
    assert iteration["episodes"] == 2 and iteration["groups"] == 1
    assert iteration.keys() >= {
        "reward_mean",
        "success_rate",
        "loss",
        "zero_variance_fraction",
        "tokens_generated",
    }
    assert iteration["variants"][0].startswith("read-priority/train/")
    assert report["eval"].keys() == {"before", "after"}
    assert_evaluation(report["eval"]["before"])
    assert_evaluation(report["eval"]["after"])
    assert "eval before: reward" in capsys.readouterr().err  # the progress bar's notes
    assert not World.objects.filter(is_template=False).exists()  # episode worlds are deleted


def test_sft_trains_on_oracle_demonstrations_one_entry_per_epoch(tmp_path):
    report = train(tmp_path, "--algo", "sft", "--sft-epochs", "2", "--eval-every", "2")

    assert report["config"]["demonstrations"] == 2 and report["config"]["demonstrations_skipped"] == []
    assert [(i["phase"], i["epoch"]) for i in report["iterations"]] == [("sft", 1), ("sft", 2)]
    assert all(i["loss"] > 0 and i["tokens"] > 0 for i in report["iterations"])
    assert "eval" not in report["iterations"][0]
    assert report["iterations"][1]["eval"]["per_task"].keys() == {"read-priority"}
    assert report["eval"].keys() == {"before", "after"}
    assert_evaluation(report["eval"]["after"])


def test_eval_only_evaluates_once_and_trains_nothing(tmp_path):
    report = train(tmp_path, "--algo", "eval", "--keep-worlds")

    assert report["iterations"] == []
    assert report["eval"]["after"] == report["eval"]["before"]
    assert_evaluation(report["eval"]["before"])
    assert World.objects.filter(is_template=False).get().outcome in ("passed", "failed")


def test_a_spent_time_budget_stops_training_before_the_first_epoch(tmp_path):
    report = train(tmp_path, "--algo", "sft", "--sft-epochs", "3", "--time-budget", "0")

    assert report["iterations"] == [] and report["eval"].keys() == {"before", "after"}


def test_an_unknown_suite_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no suite named 'nope'"):
        call_command("train", "--suite", "nope", "--algo", "eval", "--json-out", str(tmp_path / "r.json"))
