"""The experiment hyperparameter schema: defaults, conversion of command-line strings, bounds."""

import pytest

from experiments.hyperparameters import (
    BY_NAME,
    FIELDS,
    HyperparameterError,
    defaults,
    parse_assignments,
    train_config,
    validate,
)
from experiments.training import TrainConfig
from trainer.grpo import GRPOConfig
from trainer.sft import SFTConfig


def test_every_field_has_help_and_a_default_within_its_bounds():
    for field in FIELDS:
        assert field.help, field.name
        assert field.clean(field.default) == field.default


def test_the_issue_keys_are_all_there():
    assert BY_NAME.keys() >= {
        "iterations", "group_size", "tasks_per_iteration", "learning_rate", "eval_every", "max_turns",
        "temperature", "kl_coef", "lora_rank", "max_new_tokens", "sft_epochs", "seed",
    }  # fmt: skip


def test_defaults_are_the_trainers_defaults():
    config = train_config("s", "m", "grpo", defaults())
    headless = TrainConfig()
    shared = ["sft_epochs", "group_size", "tasks_per_iteration", "eval_every", "lora_rank", "temperature"]
    shared += ["top_p", "max_new_tokens", "observation_tokens", "inner_epochs", "micro_batch_size"]
    shared += ["sft_schedule"]
    for name in shared:
        assert getattr(config, name) == getattr(headless, name), name
    assert config.grpo().learning_rate == GRPOConfig().learning_rate
    assert config.sft().learning_rate == SFTConfig().learning_rate
    assert config.max_turns is None and config.train_variants is None and config.beta == 0.0


def test_command_line_strings_are_converted():
    values = validate({"iterations": "3", "learning_rate": "1e-4", "tasks": "a, b", "tool_docs": "used"})
    assert values["iterations"] == 3 and values["learning_rate"] == 1e-4
    assert values["tasks"] == ["a", "b"] and values["tool_docs"] == "used"
    assert values["group_size"] == 4  # untouched defaults stay


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iterations": 0}, "iterations must be at least 1 (got 0)"),
        ({"group_size": "2.5"}, "group_size is a whole number, not '2.5'"),
        ({"temperature": True}, "temperature is a number, not True"),
        ({"kl_coef": 11}, "kl_coef must be at most 10"),
        ({"tool_docs": "all"}, "tool_docs is one of families, used, not 'all'"),
        ({"tasks": 3}, "tasks is a list of task ids"),
        ({"lr": 1}, "unknown hyperparameter 'lr'"),
    ],
)
def test_bad_values_say_what_to_change(overrides, message):
    with pytest.raises(HyperparameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(overrides)


def test_all_problems_are_reported_at_once():
    with pytest.raises(HyperparameterError) as caught:
        validate({"iterations": -1, "seed": "x"})
    assert len(caught.value.problems) == 2


def test_assignments_need_an_equals_sign():
    assert parse_assignments(["iterations=2", " seed = 7 "]) == {"iterations": "2", "seed": "7"}
    with pytest.raises(HyperparameterError, match="--set takes key=value, not 'iterations'"):
        parse_assignments(["iterations"])
