"""``manage.py train``: train (or only evaluate) a policy on a task suite in this one process, with
a progress bar on stderr, and write the run's report as one JSON object.

    python manage.py train --suite atlassian-core --model smollm2-135m --algo sft+grpo \\
        --sft-epochs 2 --iterations 20 --group-size 4 --tasks-per-iteration 4 --eval-every 5 \\
        --seed 0 --json-out results.json

The report: ``{"config": {...}, "iterations": [one metrics object per SFT epoch or GRPO
iteration], "eval": {"before": {...}, "after": {...}}, "seconds": ...}``; each evaluation holds
held-out (test split) reward and success, overall and per task (experiments.training).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments.suites import SuiteError
from experiments.training import (
    ALGOS,
    GRPO_VARIANTS,
    TASK_SAMPLING,
    TOOL_DOCS,
    TrainConfig,
    TrainingError,
    run_training,
)
from trainer.models import cpu_has_bf16, pick_device
from trainer.sft import SCHEDULES


def _write_json(path: Path, document: dict) -> None:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _figures(summary: dict) -> str:
    return (
        f"reward {summary['reward']:.3f}, success {summary['success']:.3f} ({summary['episodes']} episodes)"
    )


class ProgressBar:
    """Drives a tqdm bar on stderr from run_training's progress events."""

    def __init__(self, stream=None, disable=False):
        self.stream = stream or sys.stderr
        self.disable = disable
        self.bar = None

    def __call__(self, event: str, data: dict) -> None:
        if event == "plan":
            self.bar = tqdm(
                total=data["steps"], desc="train", unit="step", file=self.stream, disable=self.disable
            )
        elif event == "eval":
            message = f"eval {data['label']}: {_figures(data['summary'])}"
            if self.bar is not None:
                self.bar.write(message, file=self.stream)
            elif not self.disable:
                self.stream.write(message + "\n")
        elif event == "turn" and self.bar is not None:
            rate = data["tokens"] / data["seconds"] if data["seconds"] else 0.0
            self.bar.set_postfix_str(
                f"{data['stage']}: {data['sequences']} seqs, {data['tokens']} tokens at {rate:.0f}/s"
            )
        elif event == "step" and self.bar is not None:
            if data["phase"] == "sft":
                self.bar.set_postfix_str(f"sft loss {data['loss']:.3f}")
            else:
                self.bar.set_postfix_str(
                    f"reward {data['reward_mean']:.3f} success {data['success_rate']:.2f}"
                )
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Command(BaseCommand):
    help = (
        "Train a policy on a task suite headless (GRPO, SFT, SFT then GRPO, or evaluate only) "
        "and write a JSON report."
    )

    def add_arguments(self, parser):
        defaults = TrainConfig()
        add = parser.add_argument
        add(
            "--suite",
            default=defaults.suite,
            help="a stored suite's name (built-ins load themselves) or a YAML file",
        )
        add("--model", default=defaults.model, help="smollm2-135m, tiny-random, or a Hugging Face id/path")
        add("--algo", choices=ALGOS, default=defaults.algo)
        add("--sft-epochs", type=int, default=defaults.sft_epochs)
        add("--iterations", type=int, default=defaults.iterations, help="GRPO iterations")
        add("--group-size", type=int, default=defaults.group_size, help="episodes per variant (G)")
        add(
            "--tasks-per-iteration",
            type=int,
            default=defaults.tasks_per_iteration,
            help="variants per iteration (K)",
        )
        add(
            "--eval-every",
            type=int,
            default=defaults.eval_every,
            help="evaluate every N iterations (0: never)",
        )
        add("--seed", type=int, default=defaults.seed)
        add("--json-out", type=Path, default=None, help="where to write the report (default: stdout)")
        add("--learning-rate", type=float, default=None, help="GRPO learning rate (default: trainer's)")
        add("--sft-learning-rate", type=float, default=None, help="SFT learning rate (default: trainer's)")
        add(
            "--sft-schedule",
            choices=SCHEDULES,
            default=defaults.sft_schedule,
            help="SFT learning rate: constant, or decaying to 0 over the SFT budget (else its epochs)",
        )
        add("--lora-rank", type=int, default=defaults.lora_rank)
        add("--lora-alpha", type=int, default=None, help="default: twice the rank")
        add(
            "--lora-modules",
            choices=("attention", "all"),
            default=defaults.lora_modules,
            help="layers with an adapter: the attention projections, or those and the MLP's",
        )
        add("--max-turns", type=int, default=None, help="cap on each task's own turn limit")
        add("--temperature", type=float, default=defaults.temperature, help="sampling temperature (GRPO)")
        add("--top-p", type=float, default=defaults.top_p)
        add("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="per turn")
        add(
            "--reply-prefix",
            default=defaults.reply_prefix,
            help="text every reply starts with, given rather than sampled ('{\"' keeps a base model to JSON)",
        )
        add("--observation-tokens", type=int, default=defaults.observation_tokens)
        add(
            "--beta",
            type=float,
            default=defaults.beta,
            help="KL weight, to the policy GRPO starts from (the SFT policy after SFT; 0: no reference pass)",
        )
        add("--inner-epochs", type=int, default=defaults.inner_epochs)
        add("--micro-batch-size", type=int, default=defaults.micro_batch_size)
        add("--eval-variants", type=int, default=None, help="test variants per task (default: all)")
        add("--train-variants", type=int, default=None, help="train variants per task (default: all)")
        add(
            "--grpo-variants",
            choices=GRPO_VARIANTS,
            default=defaults.grpo_variants,
            help="train variants GRPO samples: the same as the demonstrations', or fresh ones drawn "
            "past --train-variants (prompts without a demonstration)",
        )
        add(
            "--task-sampling",
            choices=TASK_SAMPLING,
            default=defaults.task_sampling,
            help="how GRPO picks an iteration's variants: the pool shuffled and cycled, or by task, "
            "weighted by how much the task's last groups' rewards spread",
        )
        add("--eval-batch-size", type=int, default=defaults.eval_batch_size)
        add("--task", dest="tasks", action="append", default=[], help="only this task id (repeatable)")
        add(
            "--tool-docs",
            choices=TOOL_DOCS,
            default=defaults.tool_docs,
            help="endpoints in the system prompt",
        )
        add(
            "--time-budget",
            type=float,
            default=None,
            help="seconds of training before stopping early (GRPO begins no iteration expected to overrun)",
        )
        add(
            "--sft-budget",
            type=float,
            default=None,
            help="seconds of training the SFT phase may use (sft+grpo: GRPO gets the rest of --time-budget)",
        )
        add("--keep-worlds", action="store_true", help="keep the episodes' worlds (outcome marked)")
        add("--checkpoint-in", default=None, help="start from this adapter checkpoint")
        add("--checkpoint-out", default=None, help="save the trained adapter here")
        add("--device", default=None, help="cpu or cuda (default: CUDA when present)")
        add(
            "--dtype",
            choices=("float32", "bf16", "auto"),
            default=defaults.dtype,
            help="weights' dtype (the adapter stays float32); bf16 is faster on a CPU with bf16 "
            "instructions (AVX-512 BF16, AMX)",
        )
        add(
            "--eval-before",
            default=None,
            metavar="REPORT",
            help="take the before-training evaluation from this earlier report of the same base "
            "model, suite and evaluation settings instead of running it again",
        )
        add("--no-progress", action="store_true", help="no progress bar")
        add(
            "--threads",
            type=int,
            default=None,
            help="torch threads (default: torch's, one per core); 1 when other work shares the cores",
        )

    def handle(self, *args, json_out, no_progress, threads, **options):
        if threads:
            import torch

            torch.set_num_threads(threads)
        fields = TrainConfig.__dataclass_fields__
        config = TrainConfig(**{name: value for name, value in options.items() if name in fields})
        if config.dtype == "bf16" and pick_device(config.device).type == "cpu" and not cpu_has_bf16():
            self.stderr.write(
                "warning: this CPU has no bf16 instructions (AVX-512 BF16 or AMX), so bf16 is emulated "
                "and far slower than float32 (about 50x for SFT on an AVX2 EPYC); --dtype auto picks "
                "what this machine does fast"
            )
        progress = ProgressBar(disable=no_progress)
        try:
            report = run_training(config, progress)
        except (TrainingError, SuiteError) as err:
            raise CommandError(str(err)) from None
        finally:
            progress.close()
        if json_out is None:
            self.stdout.write(json.dumps(report, indent=1))
            return
        _write_json(json_out, report)
        before, after = report["eval"]["before"], report["eval"]["after"]
        self.stdout.write(f"before: {_figures(before)}")
        if "after_sft" in report["eval"]:
            self.stdout.write(f"after SFT: {_figures(report['eval']['after_sft'])}")
        self.stdout.write(f"after: {_figures(after)}")
        self.stdout.write(f"wrote {json_out} ({report['seconds']:.0f} s)")
