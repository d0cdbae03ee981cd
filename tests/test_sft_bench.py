"""bench/sft.py: arms trained side by side in processes of their own, scored on held-out oracle
demonstrations of the suite's test split."""

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("sft_bench", Path(__file__).parents[1] / "bench" / "sft.py")
sft_bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(sft_bench)
SUITE = Path(__file__).parent / "experiments" / "suites" / "jira_oracle.yaml"


@pytest.mark.django_db
def test_each_arm_trains_for_its_budget_and_scores_the_held_out_demonstrations(capsys):
    argv = ["--suite", str(SUITE), "--model", "tiny-random", "--budget", "3"]
    assert sft_bench.main([*argv, "--train-per-task", "1", "--held-out-per-task", "1"]) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert [(arm["schedule"], arm["learning_rate"], arm["grouping"]) for arm in report["arms"]] == [
        ("constant", 2e-3, "off"),
        ("linear", 2e-3, "off"),
    ]
    for arm in report["arms"]:
        assert arm["steps"] >= 1 and arm["seconds"] >= 3 and arm["held_out_nll"] > 0
        assert 0 <= arm["held_out_exact_turns"] <= 1
    assert lines[1].startswith("constant lr 0.002 grouping off accumulation 1:")
    assert "1.00x the first arm's" in lines[1]


def test_one_comparison_at_a_time():
    with pytest.raises(SystemExit):
        sft_bench.main(
            [
                "--schedule",
                "constant",
                "--schedule",
                "linear",
                "--learning-rate",
                "1e-3",
                "--learning-rate",
                "2e-3",
            ]
        )


@pytest.mark.django_db
def test_an_arm_in_full_sets_grouping_and_accumulation_together(capsys):
    argv = ["--suite", str(SUITE), "--model", "tiny-random", "--budget", "2", "--train-per-task", "2"]
    argv += ["--held-out-per-task", "1", "--arm", "grouping=off", "--arm", "grouping=on,accumulation=2"]
    assert sft_bench.main(argv) == 0

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    arms = [(arm["schedule"], arm["grouping"], arm["accumulation"]) for arm in report["arms"]]
    assert arms == [("linear", "off", 1), ("linear", "on", 2)]
    with pytest.raises(SystemExit):
        sft_bench.main(["--arm", "grouping=sometimes"])
    with pytest.raises(SystemExit):
        sft_bench.main(["--arm", "batch=4"])
