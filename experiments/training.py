"""Training a policy on a task suite in one process: the pieces the headless ``manage.py train``
command runs in a loop, and that the Celery orchestration can run one task at a time.

- ``build_policy(config, system)``: base model + LoRA adapter (fresh, or a saved checkpoint), its
  tokenizer, a batched generation backend and the system prompt (``suite_system_prompt``).
- ``demonstrations(spec, split)``: every variant's oracle played through a SimEnvironment
  (``experiments.environment.oracle_transcript``), kept when it scores 1.0; ``transcript_messages``
  renders one as the chat the policy reads, for SFT.
- ``sample_groups(policy, variants, G, settings)``: G rollouts of each variant, all of them batched
  together through the trainer's agent loop, verified; one group of episodes per variant.
- ``train_step(policy, groups, grpo)``: one GRPO update from those groups (trainer.grpo).
- ``evaluate_split(policy, spec, split)``: greedy episodes on a split, reward and success per task.
- ``run_training(config)``: the whole run (``--algo grpo|sft|sft+grpo|eval``) and its report:
  ``{"config", "iterations": [one metrics object per SFT epoch / GRPO iteration], "eval":
  {"before", "after"}}`` (plus ``"after_sft"`` for sft+grpo, and the run's ``"seconds"``).

The episodes' worlds are deleted once verified unless ``keep_worlds`` is set (their outcome is
marked either way); the report keeps every verdict that matters.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from experiments.environment import SimEnvironment, discard_worlds, oracle_transcript, tool_docs
from experiments.solvers import SolverError
from trainer.evaluate import evaluate
from trainer.generation import SamplingSettings, TransformersBackend
from trainer.grpo import GRPOConfig, continue_optimizer, grpo_update, make_optimizer
from trainer.models import (
    DEFAULT_MODEL,
    LORA_MODULES,
    LoraSettings,
    adapter_weights,
    add_lora,
    load_base_model,
    pick_device,
    pick_dtype,
)
from trainer.prompts import OBSERVATION_TOKENS, build_messages, render_observation, system_prompt
from trainer.rollout import Episode, RolloutSettings, run_episodes
from trainer.sft import SCHEDULES, SFTConfig, encode_demonstration, sft_train

ALGOS = ("grpo", "sft", "sft+grpo", "eval")
OUTPUT_CHARS = 300  # of each model turn kept in an evaluation's per-variant list
TOOL_DOCS = ("families", "used")
# Which train variants GRPO samples: the same as SFT's demonstrations, or "fresh" ones past them
# (see fresh_variants), whose groups after SFT are not all already solved.
GRPO_VARIANTS = ("same", "fresh")
# How GRPO picks an iteration's train variants (IterationSampler): the pool in a seeded shuffle,
# cycled, or by task, the tasks whose groups last disagreed on reward the likelier.
TASK_SAMPLING = ("cycle", "spread")


class TrainingError(ValueError):
    """A run that cannot start as configured (unknown suite, no variants, bad settings)."""


@dataclass
class TrainConfig:
    """Everything a run needs; the command line's options, one to one.

    ``train_variants``/``eval_variants`` cap the variants per task of the train/test split (None:
    all the suite draws); ``tasks`` keeps only those task ids; ``learning_rate`` and
    ``sft_learning_rate`` default to trainer.grpo's and trainer.sft's; ``max_turns`` caps each
    task's own limit; ``time_budget`` (seconds of training, evaluations not counted) stops SFT
    epochs and GRPO iterations once spent; each iteration entry's ``elapsed`` is on that clock;
    ``sft_budget`` stops the SFT phase at that many seconds of it (sft+grpo: GRPO has the rest).
    """

    suite: str = "atlassian-core"
    model: str = DEFAULT_MODEL
    algo: str = "grpo"
    sft_epochs: int = 2
    iterations: int = 10
    group_size: int = 4
    tasks_per_iteration: int = 4
    eval_every: int = 0
    seed: int = 0
    learning_rate: float | None = None
    sft_learning_rate: float | None = None
    sft_schedule: str = "linear"  # a name of trainer.sft.SCHEDULES, over the epochs or the SFT budget
    lora_rank: int = 16
    lora_alpha: int | None = None
    lora_modules: str = "all"  # a key of trainer.models.LORA_MODULES
    max_turns: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 192
    reply_prefix: str = ""  # text every reply starts with, given rather than sampled (e.g. '{"')
    observation_tokens: int = OBSERVATION_TOKENS
    beta: float = 0.0
    inner_epochs: int = 1
    micro_batch_size: int = 8
    eval_variants: int | None = None
    train_variants: int | None = None
    eval_batch_size: int = 16
    tasks: list[str] = field(default_factory=list)
    tool_docs: str = "families"
    time_budget: float | None = None
    sft_budget: float | None = None  # seconds of the training SFT may use (sft+grpo: GRPO gets the rest)
    keep_worlds: bool = False
    checkpoint_in: str | None = None
    checkpoint_out: str | None = None
    device: str | None = None
    dtype: str = "float32"  # or bf16 (faster on a CPU with bf16 instructions), or auto
    eval_before: str | None = None  # an earlier report whose "before" evaluation this run shares
    grpo_variants: str = "same"  # a name of GRPO_VARIANTS
    task_sampling: str = "cycle"  # a name of TASK_SAMPLING

    def check(self) -> None:
        if self.algo not in ALGOS:
            raise TrainingError(f"algo is one of {', '.join(ALGOS)}, not {self.algo!r}")
        if self.lora_modules not in LORA_MODULES:
            known = ", ".join(LORA_MODULES)
            raise TrainingError(f"LoRA modules are one of {known}, not {self.lora_modules!r}")
        if self.sft_schedule not in SCHEDULES:
            known = ", ".join(SCHEDULES)
            raise TrainingError(f"SFT schedules are one of {known}, not {self.sft_schedule!r}")
        if self.grpo_variants not in GRPO_VARIANTS:
            known = ", ".join(GRPO_VARIANTS)
            raise TrainingError(f"GRPO variants are one of {known}, not {self.grpo_variants!r}")
        if self.task_sampling not in TASK_SAMPLING:
            known = ", ".join(TASK_SAMPLING)
            raise TrainingError(f"task sampling is one of {known}, not {self.task_sampling!r}")
        if self.tool_docs not in TOOL_DOCS:
            raise TrainingError(f"tool docs are one of {', '.join(TOOL_DOCS)}, not {self.tool_docs!r}")
        for name in ("group_size", "tasks_per_iteration", "max_new_tokens", "lora_rank"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1")
        for name in ("iterations", "sft_epochs", "eval_every"):
            if getattr(self, name) < 0:
                raise TrainingError(f"{name} must not be negative")
        if "grpo" in self.algo and self.group_size < 2:
            raise TrainingError("GRPO needs a group size of at least 2 (advantages are within a group)")

    @property
    def uses_sft(self) -> bool:
        return self.algo in ("sft", "sft+grpo")

    @property
    def uses_grpo(self) -> bool:
        return self.algo in ("grpo", "sft+grpo")

    def lora(self) -> LoraSettings:
        return LoraSettings(
            rank=self.lora_rank,
            alpha=self.lora_alpha or 2 * self.lora_rank,
            target_modules=list(LORA_MODULES[self.lora_modules]),
        )

    def grpo(self) -> GRPOConfig:
        defaults = GRPOConfig()
        return GRPOConfig(
            learning_rate=self.learning_rate or defaults.learning_rate,
            beta=self.beta,
            inner_epochs=self.inner_epochs,
            micro_batch_size=self.micro_batch_size,
            temperature=self.temperature,
            # bf16 log-probs differ between batch shapes: ratios against the training forward's
            recompute_old_logprobs=self.dtype != "float32",
        )

    def sft(self) -> SFTConfig:
        defaults = SFTConfig()
        return SFTConfig(
            learning_rate=self.sft_learning_rate or defaults.learning_rate,
            schedule=self.sft_schedule,
            epochs=self.sft_epochs,
            micro_batch_size=self.micro_batch_size,
            seed=self.seed,
        )

    def rollout(self, max_turns: int) -> RolloutSettings:
        """Agent-loop settings for sampling; ``max_turns`` the longest turn limit of the variants."""
        return RolloutSettings(
            max_turns=min(max_turns, self.max_turns) if self.max_turns else max_turns,
            observation_tokens=self.observation_tokens,
            sampling=SamplingSettings(
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                reply_prefix=self.reply_prefix,
            ),
        )


# --- Suites and variants ---------------------------------------------------------------------------


def load_suite_spec(name: str):
    """A SuiteSpec: a stored suite by name, or a suite YAML file by path (read, not stored). The
    built-in suites are stored first where new or changed, as ``bootstrap`` does, so a run never
    trains on an older copy of a shipped file than the one in the checkout."""
    from experiments.builtin import load_builtin_suites
    from experiments.models import TaskSuite
    from experiments.suites import load_suite

    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_suite(path.read_text())
    load_builtin_suites()
    stored = TaskSuite.objects.filter(name=name).first()
    if stored is None:
        known = ", ".join(TaskSuite.objects.values_list("name", flat=True)) or "none"
        raise TrainingError(f"no suite named {name!r} (stored suites: {known}); or give a suite file")
    return stored.spec()


def suite_tasks(spec, tasks: Sequence[str] = ()):
    """The suite's TaskSpecs, only ``tasks`` when given (unknown ids are an error)."""
    if not tasks:
        return list(spec.tasks)
    unknown = set(tasks) - {t.id for t in spec.tasks}
    if unknown:
        raise TrainingError(f"suite {spec.name!r} has no task {', '.join(sorted(unknown))}")
    return [t for t in spec.tasks if t.id in tasks]


def suite_variants(spec, split: str, *, tasks: Sequence[str] = (), per_task: int | None = None) -> list:
    """The variants of a split, task by task: all the suite draws, or the first ``per_task``."""
    from experiments.suites import variants
    from simulator.seeding import load_seed

    chosen = suite_tasks(spec, tasks)
    for seed in sorted({t.seed for t in chosen}):
        load_seed(seed)  # entity pools are read from the seed world
    out = []
    for task in chosen:
        available = task.variants.get(split, 0)
        out += variants(task, split, count=min(per_task, available) if per_task is not None else None)
    return out


def fresh_variants(
    spec, *, tasks: Sequence[str] = (), past: int | None = None, per_task: int | None = None
) -> list:
    """Train variants of each task drawn past its first ``past`` (the demonstrated ones; None: the
    suite's own number), up to ``per_task`` a task (None: as many as ``past``), whose values none of
    the first ``past`` has: prompts with a verifier and no demonstration. After SFT, GRPO's groups
    on the demonstrated variants are nearly all solved (no reward variance, nothing to learn); on
    these it meets what SFT learned by heart and held-out variants do not reward. A task whose
    train pool the first ``past`` already cover has none."""
    from experiments.variants import canonical, draw_variants

    out = []
    for task in suite_tasks(spec, tasks):
        first = task.variants.get("train", 0) if past is None else past
        drawn = draw_variants(task, "train", count=first + (first if per_task is None else per_task))
        seen = {canonical(v.values) for v in drawn[:first]}
        for variant in drawn[first:]:
            values = canonical(variant.values)
            if values not in seen:
                seen.add(values)
                out.append(variant)
    return out


def suite_system_prompt(spec, *, tasks: Sequence[str] = (), scope: str = "families") -> str:
    """The system prompt of a suite: the trainer's action rules, then the endpoint lines."""
    return system_prompt(tool_docs(suite_tasks(spec, tasks), scope=scope))


# --- The policy ------------------------------------------------------------------------------------


@dataclass
class Policy:
    """A LoRA-wrapped model with what it needs to act: tokenizer, batched backend, system prompt.
    ``optimizer`` is the current phase's (set by the phase that trains); ``progress``, when set,
    is told about every batched generation turn (see ``run_training``)."""

    model: object
    tokenizer: object
    backend: TransformersBackend
    system: str
    name: str
    optimizer: torch.optim.Optimizer | None = None
    progress: Callable[[str, dict], None] | None = None

    def backend_for(self, stage: str):
        """The backend to generate with during ``stage`` (e.g. "eval before", "rollout")."""
        return self.backend if self.progress is None else TurnReporter(self.backend, self.progress, stage)


class TurnReporter:
    """A generation backend that reports each batched turn: ``progress("turn", {"stage",
    "sequences", "tokens", "seconds"})``. Long evaluations are minutes of turns."""

    def __init__(self, backend, progress, stage: str) -> None:
        self.backend, self.progress, self.stage = backend, progress, stage

    @property
    def stats(self):
        return self.backend.stats

    @property
    def reuses_turns(self) -> bool:
        return getattr(self.backend, "reuses_turns", False)

    def generate(self, prompts, settings, **turns):
        """The wrapped backend's ``generate``; ``turns``: its TurnCache arguments, if any."""
        started = time.perf_counter()
        generations = self.backend.generate(prompts, settings, **turns)
        self.progress(
            "turn",
            {
                "stage": self.stage,
                "sequences": len(prompts),
                "tokens": sum(len(g.token_ids) for g in generations),
                "seconds": time.perf_counter() - started,
            },
        )
        return generations


def build_policy(config: TrainConfig, system: str) -> Policy:
    """Load the base model with a fresh LoRA adapter, or with ``config.checkpoint_in``'s adapter
    (trainable), and a batched generation backend over it."""
    from trainer.checkpoints import load_checkpoint

    torch.manual_seed(config.seed)
    base, tokenizer = load_base_model(config.model, device=config.device, dtype=config.dtype)
    if config.checkpoint_in:
        model = load_checkpoint(base, config.checkpoint_in, trainable=True)
    else:
        model = add_lora(base, config.lora())
    return Policy(model, tokenizer, TransformersBackend(model, tokenizer), system, config.model)


def _parameters(model) -> dict:
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


# --- Demonstrations (SFT) ---------------------------------------------------------------------------


def demonstrations(spec, split: str = "train", *, tasks: Sequence[str] = (), per_task: int | None = None):
    """(transcripts, skipped): each variant's oracle played through a SimEnvironment, kept when it
    scores 1.0; ``skipped`` lists ``"variant key: why"`` for the others. Worlds are deleted."""
    kept, skipped = [], []
    for variant in suite_variants(spec, split, tasks=tasks, per_task=per_task):
        try:
            transcript = oracle_transcript(variant)
        except (SolverError, ValueError, KeyError) as err:
            skipped.append(f"{variant.key}: the oracle could not be played: {err}")
            continue
        discard_worlds([transcript.world])
        if transcript.result.reward < 1.0:
            skipped.append(f"{variant.key}: the oracle scores {transcript.result.reward:.3f}")
            continue
        kept.append(transcript)
    return kept, skipped


def transcript_messages(
    transcript, system: str, tokenizer, observation_tokens: int = OBSERVATION_TOKENS
) -> list[dict]:
    """A transcript as chat messages, exactly as the agent loop renders an episode: system,
    instruction, then each action (assistant) and its observation (user); the final action has
    none and ends the chat."""
    messages = build_messages(system, transcript.instruction)
    for text, observation in transcript.turns:
        messages.append({"role": "assistant", "content": text})
        if observation is not None:
            messages.append(
                {"role": "user", "content": render_observation(observation, tokenizer, observation_tokens)}
            )
    return messages


# --- Rollouts, updates, evaluation -------------------------------------------------------------------


def _environments(variants, copies: int, max_turns: int | None):
    return [SimEnvironment(v, max_turns=max_turns) for v in variants for _ in range(copies)]


def sample_groups(
    policy: Policy,
    variants: Sequence,
    group_size: int,
    settings: RolloutSettings,
    *,
    keep_worlds: bool = False,
) -> list[list[Episode]]:
    """``group_size`` episodes of each variant, all generated in one batched run; one group (list
    of verified episodes, verdicts in ``episode.details``) per variant, in order."""
    envs = _environments(variants, group_size, settings.max_turns)
    task_ids = [v.task_id for v in variants for _ in range(group_size)]
    try:
        backend = policy.backend_for("rollout")
        episodes = run_episodes(backend, policy.tokenizer, policy.system, envs, settings, task_ids)
    finally:
        if not keep_worlds:
            discard_worlds([env.world for env in envs])
    return [episodes[i : i + group_size] for i in range(0, len(episodes), group_size)]


def sample_group(
    policy: Policy, variant, group_size: int, settings: RolloutSettings, **kwargs
) -> list[Episode]:
    """``sample_groups`` for one variant."""
    return sample_groups(policy, [variant], group_size, settings, **kwargs)[0]


def _episode_figures(episodes: Sequence[Episode]) -> dict:
    n = len(episodes) or 1
    return {
        "format_errors_mean": sum(e.details.get("format_errors", 0) for e in episodes) / n,
        "turns_mean": sum(len(e.turns) for e in episodes) / n,
        "calls_mean": sum(e.details.get("calls", 0) for e in episodes) / n,
        "finished_fraction": sum(e.done for e in episodes) / n,
    }


def train_step(
    policy: Policy, groups: Sequence[Sequence[Episode]], config: GRPOConfig, reference: dict | None = None
) -> dict:
    """One GRPO update of the policy's adapter from verified groups; the update's metrics
    (trainer.grpo.grpo_update) plus format errors, turns and calls per episode. ``reference``:
    the adapter weights GRPO started from, the KL's reference (None: the base model)."""
    if policy.optimizer is None:
        policy.optimizer = make_optimizer(policy.model, config.learning_rate, config.weight_decay)
    metrics = grpo_update(policy.model, policy.optimizer, groups, config, reference)
    metrics.update(_episode_figures([e for group in groups for e in group]))
    return metrics


def evaluate_split(
    policy: Policy,
    spec,
    split: str = "test",
    *,
    settings: RolloutSettings,
    tasks: Sequence[str] = (),
    per_task: int | None = None,
    batch_size: int = 16,
    keep_worlds: bool = False,
    label: str = "eval",
) -> dict:
    """Greedy episodes on every variant of a split: ``{"reward", "success", "episodes",
    "per_task": {task: {"reward", "success", "episodes"}}, "format_errors_mean", "turns_mean",
    "calls_mean", "finished_fraction", "seconds", "variants": [{"key", "reward", "success",
    "turns", "format_errors", "outputs"}]}``; ``outputs`` are the model's turns, each cut to
    ``OUTPUT_CHARS`` characters (untrusted text: escape it wherever it is shown)."""
    started = time.perf_counter()
    variants = suite_variants(spec, split, tasks=tasks, per_task=per_task)
    envs = _environments(variants, 1, settings.max_turns)
    try:
        summary, episodes = evaluate(
            policy.backend_for(label),
            policy.tokenizer,
            policy.system,
            [(v.task_id, env) for v, env in zip(variants, envs, strict=True)],
            settings,
            greedy=True,
            batch_size=batch_size,
        )
    finally:
        if not keep_worlds:
            discard_worlds([env.world for env in envs])
    summary.update(_episode_figures(episodes))
    summary["seconds"] = time.perf_counter() - started
    summary["variants"] = [
        {
            "key": e.details.get("variant"),
            "reward": e.reward,
            "success": e.success,
            "turns": len(e.turns),
            "format_errors": e.details.get("format_errors", 0),
            "outputs": [turn.text[:OUTPUT_CHARS] for turn in e.turns],
        }
        for e in episodes
    ]
    return summary


def _brief(summary: dict) -> dict:
    """An evaluation without its per-variant list (for per-iteration entries)."""
    return {k: v for k, v in summary.items() if k != "variants"}


# --- The run ----------------------------------------------------------------------------------------

Progress = Callable[[str, dict], None]


def _quiet(_event: str, _data: dict) -> None:
    return None


def run_training(config: TrainConfig, progress: Progress | None = None) -> dict:
    """Run ``config.algo`` end to end and return the report (see the module docstring).

    ``progress(event, data)`` is told: ``"plan"`` ({"steps": SFT epochs + GRPO iterations}),
    ``"turn"`` (each batched generation, see ``TurnReporter``), ``"eval"`` ({"label",
    "summary"}) and ``"step"`` (one entry of ``iterations``).
    """
    config.check()
    # "auto" becomes what this machine runs (bf16 only where the CPU or GPU does it in hardware:
    # emulated bf16 on a CPU without it was 50x slower than float32), so that the report, the
    # shared evaluation's check and GRPO's log-prob recompute all see the dtype that ran.
    dtype = pick_dtype(pick_device(config.device), config.dtype)
    config = replace(config, dtype="bf16" if dtype == torch.bfloat16 else "float32")
    progress = progress or _quiet
    started = time.perf_counter()
    spec = load_suite_spec(config.suite)
    train = suite_variants(spec, "train", tasks=config.tasks, per_task=config.train_variants)
    test = suite_variants(spec, "test", tasks=config.tasks, per_task=config.eval_variants)
    if not test:
        raise TrainingError(f"suite {spec.name!r} has no test variants to evaluate on")
    if config.algo != "eval" and not train:
        raise TrainingError(f"suite {spec.name!r} has no train variants to train on")
    pool = train  # what GRPO samples
    if config.uses_grpo and config.grpo_variants == "fresh":
        pool = fresh_variants(spec, tasks=config.tasks, past=config.train_variants) or train
    system = suite_system_prompt(spec, tasks=config.tasks, scope=config.tool_docs)
    policy = build_policy(config, system)
    policy.progress = progress
    settings = config.rollout(max(v.max_turns for v in [*train, *pool, *test]))

    demos, skipped = [], []
    if config.uses_sft:
        transcripts, skipped = demonstrations(
            spec, "train", tasks=config.tasks, per_task=config.train_variants
        )
        demos = [
            encode_demonstration(
                policy.tokenizer,
                transcript_messages(t, system, policy.tokenizer, config.observation_tokens),
            )
            for t in transcripts
        ]
        if not demos:
            raise TrainingError("no oracle demonstration scored 1.0; SFT has nothing to learn from")

    report = {
        "config": {
            **asdict(config),
            "suite_name": spec.name,
            "grpo": asdict(config.grpo()) if config.uses_grpo else None,
            "sft": asdict(config.sft()) if config.uses_sft else None,
            "rollout": asdict(settings),
            "train_variants_used": len(train),
            "grpo_variants_used": len(pool) if config.uses_grpo else 0,
            "test_variants_used": len(test),
            "demonstrations": len(demos),
            "demonstrations_skipped": skipped,
            "system_prompt_tokens": len(policy.tokenizer.encode(system)),
            "device": str(next(policy.model.parameters()).device),
            "torch_threads": torch.get_num_threads(),
            **_parameters(policy.model),
        },
        "iterations": [],
        "eval": {},
    }
    steps = (config.sft_epochs if config.uses_sft else 0) + (config.iterations if config.uses_grpo else 0)
    progress("plan", {"steps": steps})

    eval_seconds = [0.0]  # evaluations during training do not count against its time

    def run_eval(label: str) -> dict:
        eval_started = time.perf_counter()
        summary = evaluate_split(
            policy,
            spec,
            "test",
            settings=settings,
            tasks=config.tasks,
            per_task=config.eval_variants,
            batch_size=config.eval_batch_size,
            keep_worlds=config.keep_worlds,
            label=f"eval {label}",
        )
        progress("eval", {"label": label, "summary": summary})
        eval_seconds[0] += time.perf_counter() - eval_started
        return summary

    if config.eval_before:
        report["eval"]["before"] = shared_evaluation(config, report["config"])
    else:
        report["eval"]["before"] = run_eval("before")
    if config.algo == "eval":
        report["eval"]["after"] = report["eval"]["before"]  # nothing trained: one evaluation
    else:
        training_started, eval_seconds[0] = time.perf_counter(), 0.0

        def training_seconds() -> float:
            return time.perf_counter() - training_started - eval_seconds[0]

        def out_of_time(ahead: float = 0.0) -> bool:
            """Whether the budget is spent, or would be ``ahead`` seconds from now."""
            return config.time_budget is not None and training_seconds() + ahead >= config.time_budget

        def record(entry: dict) -> None:
            index = len(report["iterations"]) + 1
            if config.eval_every and index % config.eval_every == 0:
                entry["eval"] = _brief(run_eval(f"iteration {index}"))
            entry = {"iteration": index, **entry, "elapsed": training_seconds()}
            report["iterations"].append(entry)
            progress("step", entry)

        def sft_out_of_time() -> bool:
            spent = config.sft_budget is not None and training_seconds() >= config.sft_budget
            return spent or out_of_time()

        if config.uses_sft:
            sft_phase(policy, demos, config, record, sft_out_of_time, training_seconds)
            if config.uses_grpo:
                report["eval"]["after_sft"] = run_eval("after SFT")
        if config.uses_grpo:
            grpo_phase(policy, pool, settings, config, record, out_of_time, training_seconds)
        report["eval"]["after"] = run_eval("after")
    if config.checkpoint_out:
        from trainer.checkpoints import save_checkpoint

        version = len(report["iterations"])
        save_checkpoint(
            policy.model, config.checkpoint_out, version, config.model, _brief(report["eval"]["after"])
        )
    report["seconds"] = time.perf_counter() - started
    return report


# What decides a greedy evaluation of the untrained policy: two runs that agree on these evaluate
# the same model on the same worlds and get the same episodes.
EVALUATION_KEYS = (
    "suite_name",
    "model",
    "tasks",
    "eval_variants",
    "test_variants_used",
    "tool_docs",
    "seed",
    "max_new_tokens",
    "reply_prefix",
    "observation_tokens",
    "max_turns",
    "eval_batch_size",
    "checkpoint_in",
    "lora_rank",
    "lora_modules",
    "dtype",
    "system_prompt_tokens",
)


def shared_evaluation(config: TrainConfig, run: dict) -> dict:
    """The "before" evaluation of ``config.eval_before``'s report, when that run evaluated the same
    untrained policy the same way (``EVALUATION_KEYS``); the greedy evaluation is deterministic,
    so several runs from one base model need not each spend minutes repeating it."""
    path = Path(config.eval_before)
    try:
        earlier = json.loads(path.read_text())
        before, theirs = earlier["eval"]["before"], earlier["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TrainingError(f"--eval-before {path}: not a readable train report ({err})") from None
    differ = [key for key in EVALUATION_KEYS if theirs.get(key) != run.get(key)]
    if differ:
        raise TrainingError(
            f"--eval-before {path}: that run evaluated differently ({', '.join(differ)} differ); "
            "drop --eval-before to evaluate here"
        )
    return {**before, "shared_from": str(path)}


def sft_phase(policy: Policy, demos, config: TrainConfig, record, out_of_time, elapsed) -> None:
    """``config.sft_epochs`` epochs on the demonstrations; ``record`` gets one entry per epoch.

    The learning-rate schedule runs over the SFT phase's time budget (``elapsed()`` seconds of
    ``config.sft_budget`` or ``config.time_budget``, whichever is shorter) when it has one, else
    over its epochs."""
    sft = config.sft()
    budget = min((b for b in (config.sft_budget, config.time_budget) if b is not None), default=None)
    policy.optimizer = make_optimizer(policy.model, sft.learning_rate, sft.weight_decay)
    for epoch in range(config.sft_epochs):
        if out_of_time():
            break

        def progress(share, epoch=epoch):
            if budget is not None:
                return elapsed() / budget if budget > 0 else 1.0
            return (epoch + share) / config.sft_epochs

        (history,) = sft_train(
            policy.model,
            policy.optimizer,
            demos,
            replace(sft, epochs=1, seed=sft.seed + epoch),
            should_stop=out_of_time,
            progress=progress,
        )
        if history["steps"]:
            record({"phase": "sft", **history, "epoch": epoch + history["demonstrations"] / len(demos)})


class IterationSampler:
    """The train variants of each GRPO iteration: ``per_iteration`` of ``pool``.

    ``cycle``: the pool in a seeded shuffle, cycled (every variant once before any twice).
    ``spread``: ``per_iteration`` different tasks (all of them, if there are fewer), drawn with
    weights, then each task's next variant (its own variants shuffled and cycled). A task's weight
    is the spread (standard deviation) of the rewards of its groups so far, a running mean, at
    least ``FLOOR``; a task not yet sampled weighs ``UNSEEN``. A group whose samples all scored
    alike has no advantage to learn from (GRPO skips it): after SFT that was half the groups,
    spent on tasks the policy already solves (or cannot begin), while the tasks it half solves,
    where the samples disagree, waited their turn in the cycle. The floor keeps an apparently
    solved task coming back now and then.

    ``UNSEEN`` is below the largest spread (0.5, rewards in [0, 1]) so that a task seen to split
    its samples comes back before every other task has had its first group: with 0.5, the first
    atlassian-core run (20 tasks, 2 a iteration, 15 iterations) spent 10 iterations on first
    visits, and still 16 of its 30 groups scored alike.
    """

    FLOOR = 0.05
    UNSEEN = 0.25
    MEMORY = 0.5  # weight of a new group's spread in the running mean

    def __init__(self, pool: Sequence, per_iteration: int, how: str = "cycle", seed: int = 0) -> None:
        if how not in TASK_SAMPLING:
            raise TrainingError(f"task sampling is one of {', '.join(TASK_SAMPLING)}, not {how!r}")
        self.how, self.per_iteration = how, per_iteration
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible order, not a secret
        self.pool = list(pool)
        self.queues: dict[str, list] = {}  # what is left of this round of a key's shuffled variants
        self.spread: dict[str, float] = {}  # task id -> running spread of its groups' rewards
        self.by_task: dict[str, list] = {}
        for variant in self.pool if how == "spread" else ():
            self.by_task.setdefault(variant.task_id, []).append(variant)

    def next(self) -> list:
        if self.how == "cycle":
            count = min(self.per_iteration, len(self.pool))
            return [self._take("", self.pool) for _ in range(count)]
        tasks = sorted(self.by_task)
        chosen = []
        while tasks and len(chosen) < self.per_iteration:
            weights = [max(self.spread.get(task, self.UNSEEN), self.FLOOR) for task in tasks]
            task = self.rng.choices(tasks, weights)[0]
            tasks.remove(task)
            chosen.append(self._take(task, self.by_task[task]))
        return chosen

    def _take(self, key: str, variants: list):
        queue = self.queues.get(key)
        if not queue:
            queue = self.queues[key] = list(variants)
            self.rng.shuffle(queue)
        return queue.pop()

    def observe(self, variants: Sequence, groups: Sequence[Sequence[Episode]]) -> None:
        """Take in the rewards of the groups sampled from ``variants`` (in the same order)."""
        if self.how != "spread":
            return
        for variant, group in zip(variants, groups, strict=True):
            if not group:
                continue
            spread = statistics.pstdev(episode.reward for episode in group)
            before = self.spread.get(variant.task_id)
            self.spread[variant.task_id] = (
                spread if before is None else (1 - self.MEMORY) * before + self.MEMORY * spread
            )


def grpo_phase(
    policy: Policy,
    train: Sequence,
    settings: RolloutSettings,
    config: TrainConfig,
    record,
    out_of_time,
    elapsed,
):
    """``config.iterations`` GRPO iterations: each samples ``group_size`` episodes of
    ``tasks_per_iteration`` train variants (``config.task_sampling``: IterationSampler) and
    updates once.

    An iteration cannot stop halfway (its update needs its groups), so none begins that the
    longest iteration so far says would end past the budget: ``out_of_time(ahead)`` is asked with
    its training seconds (``elapsed()`` before and after each; with the mean, a 140 s iteration
    began at 1,709 s of a 1,800 s budget)."""
    grpo = config.grpo()
    policy.optimizer = continue_optimizer(
        policy.optimizer, policy.model, grpo.learning_rate, grpo.weight_decay
    )
    # The KL's reference is the policy GRPO starts from: after SFT (or from --checkpoint-in) that
    # adapter; a fresh adapter starts as the base model, which disabling the adapter gives.
    started_trained = config.uses_sft or config.checkpoint_in
    reference = adapter_weights(policy.model) if started_trained and (grpo.beta or grpo.track_kl) else None
    sampler = IterationSampler(train, config.tasks_per_iteration, config.task_sampling, config.seed)
    durations: list[float] = []
    for _iteration in range(config.iterations):
        if out_of_time(max(durations, default=0.0)):
            break
        began = elapsed()
        chosen = sampler.next()
        generation_started = time.perf_counter()
        groups = sample_groups(policy, chosen, config.group_size, settings, keep_worlds=config.keep_worlds)
        generation_seconds = time.perf_counter() - generation_started
        metrics = train_step(policy, groups, grpo, reference)
        generated = metrics["tokens_generated"]
        metrics.update(
            generation_seconds=generation_seconds,
            generation_tokens_per_s=generated / generation_seconds if generation_seconds else 0.0,
            variants=[v.key for v in chosen],
        )
        sampler.observe(chosen, groups)
        record({"phase": "grpo", **metrics})
        durations.append(elapsed() - began)
