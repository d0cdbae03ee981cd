"""SFT recipes side by side: the same demonstrations and the same wall-clock budget, scored on
held-out oracle demonstrations.

    python bench/sft.py                                         # constant vs linear, 600 s each
    python bench/sft.py --suite jira-workflows --budget 900 --schedule constant --schedule cosine
    python bench/sft.py --learning-rate 2e-3 --learning-rate 4e-3 --schedule linear
    python bench/sft.py --grouping off --grouping on --schedule constant
    python bench/sft.py --arm grouping=off --arm grouping=on,accumulation=2   # arms in full

Each arm (one per --schedule, or per --learning-rate or --grouping when several of those are
given: micro-batches of demonstrations of similar length, or of the shuffled order's
neighbours; or one per --arm, which sets any of schedule, learning_rate, grouping and
accumulation, the micro-batches of an optimizer step) is a process of its own, all running at
once with an equal share of the cores, so they see the same machine. An arm
trains a fresh LoRA adapter (SmolLM2-135M, bf16 where the CPU does it in hardware, else float32;
all linear layers) on the suite's train-split
oracle demonstrations until its budget is spent, then scores the test split's oracle
demonstrations, which no arm trains on: the mean NLL per assistant token and the share of
assistant turns whose every token is the model's greedy choice (a turn that greedy decoding would
write exactly; trainer.sft.exact_turns). A full held-out evaluation (episodes in the simulator) is
bench/results.py's job; this is the quick signal for choosing a recipe.

Prints one line per arm and its ratio of held-out NLL to the first arm's, then a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")


def write_demonstrations(suite: str, train_per_task: int, held_out_per_task: int, path: Path) -> dict:
    """The train and held-out demonstrations as token ids and assistant masks, in a JSON file
    the arms read (the oracles are played once, in this process)."""
    import django

    django.setup()
    from experiments.training import demonstrations, load_suite_spec, suite_system_prompt, transcript_messages
    from trainer.models import load_tokenizer
    from trainer.sft import encode_demonstration

    spec = load_suite_spec(suite)
    tokenizer = load_tokenizer("smollm2-135m")
    system = suite_system_prompt(spec, scope="used")
    out = {}
    for split, per_task in (("train", train_per_task), ("test", held_out_per_task)):
        transcripts, _skipped = demonstrations(spec, split, per_task=per_task)
        demos = [
            encode_demonstration(tokenizer, transcript_messages(t, system, tokenizer)) for t in transcripts
        ]
        out[split] = [[d.tokens, d.assistant_mask] for d in demos]
    path.write_text(json.dumps(out))
    return {split: len(demos) for split, demos in out.items()}


def run_arm(args) -> dict:
    """Train one arm for ``args.budget`` seconds and score it on the held-out demonstrations."""
    import torch

    torch.set_num_threads(args.threads)
    from trainer.grpo import make_optimizer
    from trainer.models import LORA_MODULES, LoraSettings, PolicyConfig, load_policy
    from trainer.sft import Demonstration, SFTConfig, demonstrations_nll, exact_turns, sft_train

    data = json.loads(Path(args.demonstrations).read_text())
    train = [Demonstration(tokens, mask) for tokens, mask in data["train"]]
    held_out = [Demonstration(tokens, mask) for tokens, mask in data["test"]]
    torch.manual_seed(0)
    lora = LoraSettings(target_modules=list(LORA_MODULES["all"]))
    model, _tokenizer = load_policy(PolicyConfig(model=args.model, lora=lora, dtype="auto"))
    config = SFTConfig(
        learning_rate=args.arm_rate,
        schedule=args.arm_schedule,
        group_by_length=args.arm_grouping == "on",
        accumulation_steps=args.arm_accumulation,
        epochs=1000,
        seed=0,
    )
    optimizer = make_optimizer(model, config.learning_rate)
    started = time.perf_counter()

    def elapsed_share(_share):
        return (time.perf_counter() - started) / args.budget

    history = sft_train(
        model,
        optimizer,
        train,
        config,
        should_stop=lambda: time.perf_counter() - started >= args.budget,
        progress=elapsed_share,
    )
    seconds = time.perf_counter() - started
    demonstrations = sum(h["demonstrations"] for h in history)
    return {
        "schedule": args.arm_schedule,
        "learning_rate": args.arm_rate,
        "grouping": args.arm_grouping,
        "accumulation": args.arm_accumulation,
        "seconds": round(seconds, 1),
        "steps": sum(h["steps"] for h in history),
        "epochs": round(demonstrations / len(train), 3),
        "train_loss_last_epoch": history[-1]["loss"] if history else None,
        "held_out_nll": round(demonstrations_nll(model, held_out), 4),
        "held_out_exact_turns": round(exact_turns(model, held_out), 4),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default="atlassian-core")
    parser.add_argument("--budget", type=float, default=600, help="training seconds per arm")
    parser.add_argument("--schedule", action="append", help="default: constant and linear")
    parser.add_argument("--learning-rate", type=float, action="append", help="default: 2e-3")
    parser.add_argument("--grouping", choices=["on", "off"], action="append", help="default: off")
    parser.add_argument("--train-per-task", type=int, default=20, help="train variants per task")
    parser.add_argument("--held-out-per-task", type=int, default=2, help="test variants per task")
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m or tiny-random (tests)")
    parser.add_argument("--arm-schedule", help=argparse.SUPPRESS)
    parser.add_argument("--arm-rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--arm", action="append", help="an arm in full: e.g. grouping=on,accumulation=2")
    parser.add_argument("--arm-grouping", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--arm-accumulation", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--demonstrations", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm_schedule:
        print(json.dumps(run_arm(args)))
        return 0

    if args.arm:
        try:
            arms = [_arm(spec) for spec in args.arm]
        except ValueError as error:
            parser.error(str(error))
    else:
        schedules = args.schedule or ["constant", "linear"]
        rates = args.learning_rate or [2e-3]
        groupings = args.grouping or ["off"]
        if sum(len(varied) > 1 for varied in (schedules, rates, groupings)) > 1:
            parser.error("vary one of the schedule, the learning rate and the grouping, not several")
        arms = [(s, r, g, 1) for s in schedules for r in rates for g in groupings]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demonstrations.json"
        counts = write_demonstrations(args.suite, args.train_per_task, args.held_out_per_task, data)
        print(f"{args.suite}: {counts['train']} train, {counts['test']} held-out demonstrations", flush=True)
        threads = max(1, (os.cpu_count() or 1) // len(arms))
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, "--arm-schedule", schedule, "--arm-rate", str(rate),
                 "--arm-grouping", grouping, "--arm-accumulation", str(accumulation),
                 "--demonstrations", str(data), "--budget", str(args.budget),
                 "--threads", str(threads), "--model", args.model],
                stdout=subprocess.PIPE,
                text=True,
            )
            for schedule, rate, grouping, accumulation in arms
        ]  # fmt: skip
        results = []
        for process in processes:
            stdout, _ = process.communicate()
            if process.returncode:
                raise SystemExit(f"an arm failed (exit {process.returncode})")
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    base = results[0]["held_out_nll"]
    for r in results:
        print(
            f"{r['schedule']:>8} lr {r['learning_rate']:g} grouping {r['grouping']} accumulation "
            f"{r['accumulation']}: {r['steps']} steps, "
            f"{r['epochs']} epochs in {r['seconds']} s; held-out NLL {r['held_out_nll']} "
            f"({r['held_out_nll'] / base:.2f}x the first arm's), exact turns {r['held_out_exact_turns']:.0%}"
        )
    print(
        json.dumps({"suite": args.suite, "budget": args.budget, "threads_per_arm": threads, "arms": results})
    )
    return 0


def _arm(spec: str) -> tuple[str, float, str, int]:
    """(schedule, learning rate, grouping, accumulation) of an --arm such as
    ``grouping=on,accumulation=2``; what it leaves out is the default (linear, 2e-3, off, 1)."""
    arm = {"schedule": "linear", "learning_rate": "2e-3", "grouping": "off", "accumulation": "1"}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key.strip() not in arm or not value:
            raise ValueError(f"--arm {spec!r}: use key=value pairs of {', '.join(arm)}")
        arm[key.strip()] = value.strip()
    if arm["grouping"] not in ("on", "off"):
        raise ValueError(f"--arm {spec!r}: grouping is on or off")
    return arm["schedule"], float(arm["learning_rate"]), arm["grouping"], int(arm["accumulation"])


if __name__ == "__main__":
    sys.exit(main())
