"""The hyperparameters of an experiment: one schema, defined once.

``FIELDS`` lists every key with its type, default, bounds and help text. ``validate(overrides)``
turns a user's overrides into the full, checked dict stored on an Experiment;
``parse_assignments(["key=value", ...])`` reads the command line's ``--set`` options. The launch
form is generated from ``FIELDS`` too, so a new hyperparameter is added here and nowhere else.
``train_config(suite, model, algorithm, hyperparameters)`` maps them onto the headless trainer's
TrainConfig, so the Celery path and ``manage.py train`` run the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.prompts import OBSERVATION_TOKENS

INT, FLOAT, CHOICE, LIST = "int", "float", "choice", "list"


class HyperparameterError(ValueError):
    """Overrides that do not fit the schema; ``problems`` lists one message per key."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # int | float | choice | list (of task ids)
    default: object
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple = ()

    def clean(self, value):
        """The value converted to this field's type (strings from the command line included);
        raises ValueError with a message a user can act on."""
        if self.type == LIST:
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{self.name} is a list of task ids, not {value!r}")
            return value
        if self.type == CHOICE:
            if value not in self.choices:
                raise ValueError(f"{self.name} is one of {', '.join(self.choices)}, not {value!r}")
            return value
        if isinstance(value, bool):
            raise ValueError(f"{self.name} is a number, not {value!r}")
        try:
            if self.type == INT:
                number = int(value) if not isinstance(value, float) or value.is_integer() else None
                if number is None:
                    raise ValueError
            else:
                number = float(value)
        except (TypeError, ValueError):
            kind = "a whole number" if self.type == INT else "a number"
            raise ValueError(f"{self.name} is {kind}, not {value!r}") from None
        if self.min is not None and number < self.min:
            raise ValueError(f"{self.name} must be at least {self.min:g} (got {number:g})")
        if self.max is not None and number > self.max:
            raise ValueError(f"{self.name} must be at most {self.max:g} (got {number:g})")
        return number


FIELDS = [
    Field("iterations", INT, 10, "GRPO iterations (one chord of rollouts and one update each)", 1, 10_000),
    Field("group_size", INT, 4, "samples per task variant (G); advantages are within a group", 2, 64),
    Field("tasks_per_iteration", INT, 4, "train variants sampled per iteration (groups per chord)", 1, 1024),
    Field("learning_rate", FLOAT, 2e-5, "AdamW learning rate of the GRPO update", 0, 1),
    Field("sft_learning_rate", FLOAT, 2e-3, "AdamW learning rate of the SFT warm start", 0, 1),
    Field(
        "sft_schedule",
        CHOICE,
        "linear",
        "SFT learning rate over its epochs: constant, or decaying to 0 (linear, cosine)",
        choices=("constant", "linear", "cosine"),
    ),
    Field("sft_epochs", INT, 2, "epochs on oracle demonstrations (sft and sft+grpo)", 0, 100),
    Field("eval_every", INT, 0, "held-out evaluation every N iterations and at the end; 0: none", 0, 10_000),
    Field("max_turns", INT, 0, "cap on each task's own turn limit; 0: the task's own", 0, 100),
    Field("temperature", FLOAT, 1.0, "sampling temperature of rollouts", 0.01, 5),
    Field("top_p", FLOAT, 1.0, "nucleus sampling of rollouts", 0.01, 1),
    Field(
        "kl_coef",
        FLOAT,
        0.0,
        "β: weight of the KL to the policy GRPO starts from (the SFT policy after SFT; 0: none)",
        0,
        10,
    ),
    Field("lora_rank", INT, 16, "LoRA rank of the adapter", 1, 512),
    Field(
        "lora_modules",
        CHOICE,
        "all",
        "layers with a LoRA adapter: attention projections and MLP (all), or attention only",
        choices=("all", "attention"),
    ),
    Field("max_new_tokens", INT, 192, "new tokens per turn (JSON bodies need 100+)", 1, 4096),
    Field(
        "observation_tokens",
        INT,
        OBSERVATION_TOKENS,
        "tokens of each observation shown to the model",
        16,
        8192,
    ),
    Field("inner_epochs", INT, 1, "PPO-style passes over each iteration's episodes", 1, 16),
    Field("micro_batch_size", INT, 8, "sequences per forward/backward pass", 1, 256),
    Field(
        "train_variants", INT, 0, "train variants per task to draw from; 0: all the suite draws", 0, 10_000
    ),
    Field("eval_variants", INT, 0, "held-out variants per task to evaluate; 0: all", 0, 10_000),
    Field("tasks", LIST, [], "task ids to train on (comma-separated); empty: every task of the suite"),
    Field("tool_docs", CHOICE, "families", "endpoints in the system prompt", choices=("families", "used")),
    Field(
        "keep_worlds",
        CHOICE,
        "failed",
        "episode worlds kept for replay (simworld prune deletes old ones); the others are deleted",
        choices=("none", "failed", "all"),
    ),
    Field("seed", INT, 0, "seed of the adapter's initialisation and of the task order", 0, 2**31 - 1),
]
BY_NAME = {f.name: f for f in FIELDS}


def defaults() -> dict:
    return {f.name: (list(f.default) if f.type == LIST else f.default) for f in FIELDS}


def validate(overrides: dict | None) -> dict:
    """The full hyperparameters: the defaults with ``overrides`` checked and applied. Raises
    HyperparameterError listing every unknown key and bad value at once."""
    values, problems = defaults(), []
    for name, value in (overrides or {}).items():
        field = BY_NAME.get(name)
        if field is None:
            problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(BY_NAME)})")
            continue
        try:
            values[name] = field.clean(value)
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise HyperparameterError(problems)
    return values


def parse_assignments(assignments) -> dict:
    """``["iterations=2", "tasks=a,b"]`` -> ``{"iterations": "2", "tasks": "a,b"}`` (validate()
    converts the strings)."""
    out, problems = {}, []
    for item in assignments or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            problems.append(f"--set takes key=value, not {item!r}")
            continue
        out[name.strip()] = value.strip()
    if problems:
        raise HyperparameterError(problems)
    return out


def train_config(suite: str, model: str, algorithm: str, hp: dict):
    """The headless trainer's TrainConfig for these settings (experiments.training)."""
    from experiments.training import TrainConfig

    return TrainConfig(
        suite=suite,
        model=model,
        algo=algorithm,
        sft_epochs=hp["sft_epochs"],
        iterations=hp["iterations"],
        group_size=hp["group_size"],
        tasks_per_iteration=hp["tasks_per_iteration"],
        eval_every=hp["eval_every"],
        seed=hp["seed"],
        learning_rate=hp["learning_rate"],
        sft_learning_rate=hp["sft_learning_rate"],
        sft_schedule=hp["sft_schedule"],
        lora_rank=hp["lora_rank"],
        lora_modules=hp["lora_modules"],
        max_turns=hp["max_turns"] or None,
        temperature=hp["temperature"],
        top_p=hp["top_p"],
        max_new_tokens=hp["max_new_tokens"],
        observation_tokens=hp["observation_tokens"],
        beta=hp["kl_coef"],
        inner_epochs=hp["inner_epochs"],
        micro_batch_size=hp["micro_batch_size"],
        train_variants=hp["train_variants"] or None,
        eval_variants=hp["eval_variants"] or None,
        tasks=list(hp["tasks"]),
        tool_docs=hp["tool_docs"],
    )
