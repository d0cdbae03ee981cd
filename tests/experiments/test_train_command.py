"""manage.py train on the tiny-random model and a small test suite: the JSON report's shape."""

import json
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from experiments import training
from experiments.training import (
    TrainConfig,
    TrainingError,
    build_policy,
    fresh_variants,
    load_suite_spec,
    sample_groups,
    suite_variants,
    train_step,
)
from simulator.models import World
from trainer.generation import Generation, GenerationStats, SamplingSettings
from trainer.grpo import GRPOConfig
from trainer.rollout import RolloutSettings

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
    (variant,) = summary["variants"]
    assert variant["key"] == "read-priority/test/0" and len(variant["outputs"]) == variant["turns"] == 1


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


def test_a_spent_sft_budget_leaves_the_training_time_to_grpo(tmp_path):
    report = train(
        tmp_path, "--algo", "sft+grpo", "--sft-epochs", "3", "--sft-budget", "0", "--iterations", "1"
    )

    assert [entry["phase"] for entry in report["iterations"]] == ["grpo"]
    assert report["config"]["sft_budget"] == 0.0


def test_fresh_grpo_variants_are_train_variants_past_the_demonstrated_ones(tmp_path):
    report = train(
        tmp_path,
        *("--algo", "sft+grpo", "--sft-epochs", "1", "--iterations", "2", "--group-size", "2"),
        *("--tasks-per-iteration", "1", "--grpo-variants", "fresh"),
    )

    assert report["config"]["demonstrations"] == 2  # read-priority/train/0 and /1
    sampled = [key for i in report["iterations"] if i["phase"] == "grpo" for key in i["variants"]]
    assert len(sampled) == 2 and all(int(key.rsplit("/", 1)[1]) >= 2 for key in sampled)
    assert report["config"]["grpo_variants_used"] == 2


def test_grpo_can_pick_its_variants_by_the_spread_of_their_tasks_rewards(tmp_path):
    report = train(
        tmp_path,
        *("--algo", "grpo", "--iterations", "2", "--group-size", "2", "--task-sampling", "spread"),
    )

    assert report["config"]["task_sampling"] == "spread"
    assert [len(i["variants"]) for i in report["iterations"]] == [1, 1]  # one task: one a time
    with pytest.raises(CommandError, match="invalid choice"):
        train(tmp_path, "--algo", "grpo", "--task-sampling", "greedy")


def test_fresh_variants_have_values_no_demonstrated_variant_has():
    spec = load_suite_spec(str(SUITE))
    demonstrated = suite_variants(spec, "train", tasks=["read-priority"], per_task=3)
    fresh = fresh_variants(spec, tasks=["read-priority"], past=3, per_task=50)

    values = [json.dumps(v.values, sort_keys=True) for v in demonstrated + fresh]
    assert fresh and len(set(values)) == len(values)  # none repeats another, or a demonstrated one
    assert [v.index for v in fresh] == sorted(v.index for v in fresh) and fresh[0].index >= 3
    # a pool of 3 values, all demonstrated: nothing fresh to draw
    assert fresh_variants(spec, tasks=["assign-missing-issue"], past=3) == []


def test_a_decaying_sft_schedule_spans_the_epochs_and_unknown_ones_are_refused(tmp_path):
    report = train(tmp_path, "--algo", "sft", "--sft-epochs", "2", "--sft-schedule", "linear")

    peak = report["config"]["sft"]["learning_rate"]
    assert report["config"]["sft_schedule"] == "linear"
    # one optimizer step an epoch (2 demonstrations, one micro-batch): the second at half the peak
    assert [i["learning_rate"] for i in report["iterations"]] == pytest.approx([peak, peak / 2])
    # With a time budget the schedule runs over the budget's seconds, not over the epochs.
    timed = train(
        tmp_path, "--algo", "sft", "--sft-epochs", "2", "--sft-schedule", "linear", "--sft-budget", "1e9"
    )
    assert [i["learning_rate"] for i in timed["iterations"]] == pytest.approx([peak, peak], rel=1e-6)
    with pytest.raises(CommandError, match="invalid choice: 'step'"):
        train(tmp_path, "--algo", "sft", "--sft-schedule", "step")
    with pytest.raises(TrainingError, match="SFT schedules are one of constant, linear, cosine"):
        TrainConfig(sft_schedule="step").check()


def test_an_unknown_suite_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no suite named 'nope'"):
        call_command("train", "--suite", "nope", "--algo", "eval", "--json-out", str(tmp_path / "r.json"))


class ScriptedBackend:
    """Turn t, row r of the live batch replies ``script[t][r]``."""

    def __init__(self, tokenizer, script):
        self.tokenizer, self.script, self.turn = tokenizer, script, 0
        self.stats = GenerationStats()

    def generate(self, prompts, settings):
        replies = self.script[self.turn]
        self.turn += 1
        out = []
        for text in replies[: len(prompts)]:
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            out.append(Generation(ids, [-0.5] * len(ids), text, "json"))
        return out


def test_a_group_whose_rewards_differ_updates_the_adapter():
    spec = load_suite_spec(str(SUITE))
    (variant,) = suite_variants(spec, "train", tasks=["read-priority"], per_task=1)
    issue = variant.values["issue"]
    policy = build_policy(TrainConfig(model="tiny-random", lora_rank=4), "system")
    policy.backend = ScriptedBackend(
        policy.tokenizer,
        [
            [
                json.dumps({"method": "GET", "path": f"/rest/api/3/issue/{issue['key']}"}),
                '{"final": "no idea"}',
            ],
            [json.dumps({"final": issue["priority"]})],
        ],
    )
    lora = {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}

    (group,) = sample_groups(policy, [variant], 2, RolloutSettings(max_turns=2))
    metrics = train_step(policy, [group], GRPOConfig(learning_rate=1e-2))

    assert group[0].success and group[0].reward == 1.0 and not group[1].success
    # one sample per episode: the second turn's prompt continues the first turn as it was sampled
    assert metrics["samples"] == 2 and metrics["optimizer_steps"] == 1 and metrics["loss"] is not None
    assert metrics["tokens_trained"] == sum(e.generated_tokens for e in group)
    assert metrics["zero_variance_groups"] == 0 and metrics["format_errors_mean"] == 0.0
    changed = [n for n, p in policy.model.named_parameters() if p.requires_grad and not p.equal(lora[n])]
    assert changed
    assert not World.objects.filter(is_template=False).exists()


def test_grpo_after_sft_goes_on_with_the_sft_phases_optimizer_at_its_own_rate(tmp_path, monkeypatch):
    seen = {}
    grpo_phase = training.grpo_phase

    def watched(policy, *args, **kwargs):
        seen["after_sft"] = policy.optimizer
        seen["sft_steps"] = max(state["step"] for state in policy.optimizer.state.values())
        grpo_phase(policy, *args, **kwargs)
        seen["grpo"] = policy.optimizer

    monkeypatch.setattr(training, "grpo_phase", watched)
    train(
        tmp_path,
        "--algo",
        "sft+grpo",
        "--sft-epochs",
        "1",
        "--iterations",
        "1",
        "--group-size",
        "2",
        "--learning-rate",
        "3e-5",
    )

    assert seen["grpo"] is seen["after_sft"] and seen["sft_steps"] >= 1  # the SFT moments kept
    assert {group["lr"] for group in seen["grpo"].param_groups} == {3e-5}


@pytest.mark.parametrize(("algo", "reference"), [("sft+grpo", "the SFT policy"), ("grpo", "the base model")])
def test_grpos_kl_is_to_the_policy_it_started_from(algo, reference):
    spec = load_suite_spec(str(SUITE))
    (variant,) = suite_variants(spec, "train", tasks=["read-priority"], per_task=1)
    issue = variant.values["issue"]
    policy = build_policy(TrainConfig(model="tiny-random", lora_rank=4), "system")
    policy.backend = ScriptedBackend(
        policy.tokenizer, [[json.dumps({"final": issue["priority"]}), '{"final": "no idea"}']]
    )
    with torch.no_grad():  # the adapter as an SFT phase would leave it: no longer the identity
        for name, p in policy.model.named_parameters():
            if p.requires_grad and "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    config = TrainConfig(algo=algo, iterations=1, group_size=2, tasks_per_iteration=1, beta=0.1)
    entries = []

    training.grpo_phase(
        policy,
        [variant],
        RolloutSettings(max_turns=1),
        config,
        entries.append,
        lambda ahead=0.0: False,
        lambda: 0.0,
    )

    (entry,) = entries
    assert entry["zero_variance_groups"] == 0 and entry["kl"] is not None
    if reference == "the SFT policy":  # one optimizer step, taken after the loss: still where SFT left it
        assert entry["kl"] == pytest.approx(0.0, abs=1e-6)
    else:
        assert entry["kl"] > 0.01


def test_the_progress_reporting_backend_keeps_episodes_turn_caches(tmp_path):
    """The headless run's evaluation and rollouts go through TurnReporter; it must pass the
    TurnCache on, or every turn re-encodes the whole conversation."""
    from experiments.training import TurnReporter
    from trainer.generation import TurnCache

    config = TrainConfig(suite=str(SUITE), model="tiny-random", tasks=["read-priority"])
    policy = build_policy(config, "You call APIs.")
    events = []
    reporter = TurnReporter(policy.backend, lambda event, data: events.append(data), "eval")
    assert reporter.reuses_turns
    prompt = policy.tokenizer.encode("Get OPS-1 please, and answer with its priority.")
    turns = TurnCache()
    settings = SamplingSettings(max_new_tokens=3, temperature=0.0)
    reporter.generate([prompt], settings, turn_cache=turns, keys=["episode"])
    assert list(turns.entries) == ["episode"] and events[0]["sequences"] == 1


def test_a_run_can_share_the_before_evaluation_of_an_earlier_run_of_the_same_base(tmp_path):
    base = tmp_path / "base.json"
    call_command("train", *TINY, "--algo", "eval", "--json-out", str(base))
    sft = train(tmp_path, "--algo", "sft", "--sft-epochs", "1", "--eval-before", str(base))
    earlier = json.loads(base.read_text())["eval"]["before"]
    assert sft["eval"]["before"] == {**earlier, "shared_from": str(base)}
    with pytest.raises(CommandError, match="max_new_tokens differ"):
        train(tmp_path, "--algo", "sft", "--max-new-tokens", "5", "--eval-before", str(base))
    with pytest.raises(CommandError, match="not a readable train report"):
        train(tmp_path, "--algo", "sft", "--eval-before", str(tmp_path / "missing.json"))


def test_bf16_weights_train_a_float32_adapter_against_recomputed_old_logprobs(tmp_path):
    report = train(tmp_path, "--algo", "grpo", "--iterations", "1", "--group-size", "2", "--dtype", "bf16")
    assert report["config"]["dtype"] == "bf16"
    assert report["config"]["grpo"]["recompute_old_logprobs"] is True
    assert (
        len(report["iterations"]) == 1 and report["iterations"][0]["loss"] == report["iterations"][0]["loss"]
    )
    config = TrainConfig(suite=str(SUITE), model="tiny-random", dtype="bf16")
    policy = build_policy(config, "You call APIs.")
    dtypes = {p.dtype for p in policy.model.parameters() if p.requires_grad}
    assert (
        dtypes == {torch.float32} and next(policy.model.get_base_model().parameters()).dtype == torch.bfloat16
    )


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_dtype_runs_and_reports_bf16_only_on_a_cpu_that_does_it_in_hardware(
    tmp_path, monkeypatch, has_bf16
):
    monkeypatch.setattr("trainer.models.cpu_has_bf16", lambda: has_bf16)
    report = train(tmp_path, "--algo", "eval", "--dtype", "auto", "--device", "cpu")
    assert report["config"]["dtype"] == ("bf16" if has_bf16 else "float32")


def test_bf16_on_a_cpu_without_it_warns_that_it_is_emulated(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("experiments.management.commands.train.cpu_has_bf16", lambda: False)
    train(tmp_path, "--algo", "eval", "--dtype", "bf16", "--device", "cpu")
    assert "no bf16 instructions" in capsys.readouterr().err


def test_grpo_begins_no_iteration_the_longest_so_far_says_would_end_past_the_budget(monkeypatch):
    # An iteration runs to its end once begun; the budget is 200 s and the iterations take 20, 80,
    # 20, 20, ... seconds (a group of long episodes now and then).
    from types import SimpleNamespace

    clock, lengths = [0.0], iter([20.0, 80.0] + [20.0] * 10)

    def sample(policy, chosen, group_size, settings, keep_worlds=False):
        clock[0] += next(lengths) - 5.0
        return [[] for _ in chosen]

    def update(policy, groups, config, reference=None):
        clock[0] += 5.0
        return {"tokens_generated": 0}

    monkeypatch.setattr(training, "sample_groups", sample)
    monkeypatch.setattr(training, "train_step", update)
    monkeypatch.setattr(training, "continue_optimizer", lambda *args: None)
    config = TrainConfig(algo="grpo", iterations=10, time_budget=200.0)
    entries = []
    train_variants = [SimpleNamespace(key=f"v{i}") for i in range(3)]

    def out_of_time(ahead=0.0):
        return clock[0] + ahead >= config.time_budget

    policy = SimpleNamespace(model=None, optimizer=None)
    training.grpo_phase(policy, train_variants, None, config, entries.append, out_of_time, lambda: clock[0])
    # Began at 0, 20 and 100; at 120 another 80 s one would end at 200. (The mean, 40 s, would
    # have begun three more, the last ending at 180 + 80 = 260 had it been long.)
    assert len(entries) == 3 and clock[0] == 120.0
