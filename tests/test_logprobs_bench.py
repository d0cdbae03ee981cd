"""bench/logprobs.py: SFT micro-batches run row by row and as a padded batch, timed in the same
run; both ways compute the same loss."""

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "logprobs_bench", Path(__file__).parents[1] / "bench" / "logprobs.py"
)
logprobs_bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(logprobs_bench)
SUITE = Path(__file__).parent / "experiments" / "suites" / "jira_oracle.yaml"


@pytest.mark.django_db
def test_both_ways_run_every_micro_batch_and_agree_on_the_loss(capsys):
    argv = ["--suite", str(SUITE), "--model", "tiny-random", "--demonstrations", "5", "--threads", "1"]
    assert logprobs_bench.main(argv) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["demonstrations"] == 5 and report["micro_batches"] >= 1
    assert set(report["seconds"]) == {"padded batch", "row by row"}
    assert all(seconds > 0 for seconds in report["seconds"].values())
    # The same sum of log-probs either way, up to bf16 rounding.
    assert report["largest_relative_loss_difference"] < 0.02
    assert "x the padded batch" in lines[-2]
