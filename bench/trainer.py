"""GRPO throughput of this trainer against TRL's GRPOTrainer, measured in one run.

    python bench/trainer.py                 # both trainers, then the ratios
    python bench/trainer.py --setup-trl     # once: a separate venv with TRL under var/bench-trl/
    python bench/trainer.py --skip-trl      # this trainer only

The workload (../shared/bench/grpo_workload.json, or --workload) is a fixed single-turn GRPO run:
16 prompts asking for one Atlassian REST call as JSON, groups of 4 samples, 4 prompts a step,
4 steps, 48 new tokens, LoRA r=16 on q/k/v/o of SmolLM2-135M-Instruct. Both trainers update on
every group, including groups whose rewards are all equal. Each trainer runs in its own process
(TRL in its own venv, so TRL never enters the project's requirements), which also gives each its
own peak resident memory. Also measured: the batched generation of a step's 16 sequences against
generating them one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainer.parsing import first_json_object  # noqa: E402 - after the path set-up

DEFAULT_WORKLOAD = REPO.parent / "shared" / "bench" / "grpo_workload.json"
TRL_DIR = Path(os.environ.get("RLVR_VAR_DIR") or REPO / "var") / "bench-trl"
TRL_PACKAGES = ["trl==1.16.0", "transformers==5.23.0", "peft==0.21.2"]


def workload_reward(text: str, expected: dict) -> float:
    """The workload's graded reward (see its `reward.rule`): 0 to 0.75 for partial matches, 1.0
    when the first JSON object has exactly the expected method and path."""
    found, _why = first_json_object(text)
    if found and found.get("method") == expected["method"] and found.get("path") == expected["path"]:
        return 1.0
    return 0.25 * ("{" in text) + 0.25 * (expected["method"] in text) + 0.25 * (expected["path"] in text)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def run_ours(workload: dict) -> dict:
    """This trainer on the workload; returns its figures."""
    import torch

    from trainer.generation import SamplingSettings, TransformersBackend
    from trainer.grpo import GRPOConfig, grpo_update, make_optimizer
    from trainer.models import LoraSettings, PolicyConfig, load_policy
    from trainer.prompts import build_messages, encode_prompt
    from trainer.rollout import Episode, Turn

    grpo, lora = workload["grpo"], workload["lora"]
    torch.manual_seed(grpo["seed"])
    settings = LoraSettings(lora["r"], lora["alpha"], lora["dropout"], lora["target_modules"])
    policy, tokenizer = load_policy(PolicyConfig(workload["model"], settings))
    backend = TransformersBackend(policy, tokenizer)
    optimizer = make_optimizer(policy, grpo["learning_rate"])
    config = GRPOConfig(
        learning_rate=grpo["learning_rate"],
        epsilon=grpo["epsilon"],
        beta=grpo["beta"],
        inner_epochs=grpo["inner_epochs"],
        temperature=grpo["temperature"],
        skip_zero_variance=False,
        micro_batch_size=grpo["group_size"] * grpo["prompts_per_step"],  # one forward: the system prompt once
    )
    size, per_step = grpo["group_size"], grpo["prompts_per_step"]
    prompts = workload["prompts"]
    figures = {"generation_s": 0.0, "generated": 0, "update_s": 0.0, "trained": 0, "zero_variance": []}
    started = time.perf_counter()
    first_step_prompts = None
    for step in range(grpo["steps"]):
        batch = [prompts[(step * per_step + i) % len(prompts)] for i in range(per_step)]
        ids = [
            encode_prompt(tokenizer, build_messages(workload["system_prompt"], p["instruction"]))
            for p in batch
        ]
        sampling = SamplingSettings(
            grpo["max_new_tokens"], grpo["temperature"], grpo["top_p"], prose_tokens=0, seed=step
        )
        first_step_prompts = first_step_prompts or [p for p in ids for _ in range(size)]
        t0 = time.perf_counter()
        generations = backend.generate([p for p in ids for _ in range(size)], sampling)
        figures["generation_s"] += time.perf_counter() - t0
        figures["generated"] += sum(len(g.token_ids) for g in generations)
        groups = []
        for index, (prompt, item) in enumerate(zip(ids, batch, strict=True)):
            group = []
            for g in generations[index * size : (index + 1) * size]:
                turn = Turn(prompt, g.token_ids, g.logprobs, g.text, None, None, "", g.finish_reason, 0.0)
                group.append(
                    Episode("bench", item["instruction"], [turn], workload_reward(g.text, item["expected"]))
                )
            groups.append(group)
        metrics = grpo_update(policy, optimizer, groups, config)
        figures["update_s"] += metrics["train_seconds"]
        figures["trained"] += metrics["tokens_trained"]
        figures["zero_variance"].append(metrics["zero_variance_fraction"])
    figures["wall_s"] = time.perf_counter() - started

    # Batched group generation against one sequence at a time (no sharing), same 16 prompts.
    sampling = SamplingSettings(
        grpo["max_new_tokens"], grpo["temperature"], grpo["top_p"], prose_tokens=0, seed=99
    )
    t0 = time.perf_counter()
    batched = backend.generate(first_step_prompts, sampling)
    figures["batched_s"] = time.perf_counter() - t0
    figures["batched_tokens"] = sum(len(g.token_ids) for g in batched)
    single_backend = TransformersBackend(policy, tokenizer, share_prefix=False)
    t0 = time.perf_counter()
    single = [single_backend.generate([p], sampling)[0] for p in first_step_prompts]
    figures["single_s"] = time.perf_counter() - t0
    figures["single_tokens"] = sum(len(g.token_ids) for g in single)
    figures["peak_rss_gb"] = peak_rss_gb()
    return figures


def run_trl(workload: dict, model_dir: str) -> dict:
    """TRL's GRPOTrainer on the same workload (run inside the TRL venv); returns its figures."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    grpo, lora = workload["grpo"], workload["lora"]
    torch.manual_seed(grpo["seed"])
    rows = [
        {
            "prompt": [
                {"role": "system", "content": workload["system_prompt"]},
                {"role": "user", "content": p["instruction"]},
            ],
            "expected": json.dumps(p["expected"]),
        }
        for p in workload["prompts"]
    ]

    def reward(completions, expected, **_kwargs):
        return [
            workload_reward(c[0]["content"] if isinstance(c, list) else c, json.loads(e))
            for c, e in zip(completions, expected, strict=True)
        ]

    figures = {"generation_s": 0.0, "generated": 0, "zero_variance": []}

    class TimedGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            figures["generation_s"] += time.perf_counter() - t0
            figures["generated"] += int(out["completion_mask"].sum())
            return out

    size = grpo["group_size"]
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"),
        per_device_train_batch_size=size * grpo["prompts_per_step"],
        gradient_accumulation_steps=1,
        num_generations=size,
        max_completion_length=grpo["max_new_tokens"],
        temperature=grpo["temperature"],
        top_p=grpo["top_p"],
        learning_rate=grpo["learning_rate"],
        beta=grpo["beta"],
        epsilon=grpo["epsilon"],
        num_iterations=grpo["inner_epochs"],
        max_steps=grpo["steps"],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=grpo["seed"],
        use_cpu=True,
        bf16=False,
    )
    peft_config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )
    trainer = TimedGRPOTrainer(
        model=model_dir,
        reward_funcs=reward,
        args=args,
        train_dataset=Dataset.from_list(rows),
        peft_config=peft_config,
    )
    started = time.perf_counter()
    trainer.train()
    figures["wall_s"] = time.perf_counter() - started
    figures["update_s"] = figures["wall_s"] - figures["generation_s"]
    figures["trained"] = figures["generated"]  # TRL trains on every completion token it generated
    logs = [entry for entry in trainer.state.log_history if "frac_reward_zero_std" in entry]
    figures["zero_variance"] = [entry["frac_reward_zero_std"] for entry in logs]
    figures["peak_rss_gb"] = peak_rss_gb()
    return figures


def setup_trl() -> Path:
    """Create var/bench-trl/venv with TRL (torch spelled exactly, so pip takes the CPU wheel)."""
    python = TRL_DIR / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TRL_DIR / "venv")], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *TRL_PACKAGES], check=True)
    return python


def run_part(python: str, part: str, workload_path: Path, model_dir: str, threads: int | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            python,
            __file__,
            "--part",
            part,
            "--workload",
            str(workload_path),
            "--model-dir",
            model_dir,
        ]
        command += ["--out", out.name] + (["--threads", str(threads)] if threads else [])
        subprocess.run(command, check=True, cwd=REPO)
        return json.loads(Path(out.name).read_text())


def report(ours: dict, trl: dict | None) -> dict:
    def rate(figures, tokens, seconds):
        return figures[tokens] / figures[seconds] if figures[seconds] else 0.0

    rows = [
        ("wall time for the steps (s)", "wall_s", None),
        ("generation (tokens/s)", ("generated", "generation_s"), "rate"),
        ("update (trained tokens/s)", ("trained", "update_s"), "rate"),
        ("tokens generated", "generated", None),
        ("peak resident memory (GB)", "peak_rss_gb", None),
    ]
    summary = {"ours": ours, "trl": trl}
    print(f"{'figure':34} {'this trainer':>14} {'TRL':>10} {'ratio':>7}")
    for label, key, kind in rows:
        mine = rate(ours, *key) if kind else ours[key]
        theirs = (rate(trl, *key) if kind else trl[key]) if trl else None
        ratio = ""
        if theirs:
            ratio = f"{mine / theirs:6.2f}x" if kind else f"{theirs / mine:6.2f}x" if key == "wall_s" else ""
        print(f"{label:34} {mine:14.2f} {theirs if theirs is not None else float('nan'):10.2f} {ratio:>7}")
    zero = ", ".join(f"{z:.0%}" for z in ours["zero_variance"])
    print(
        f"{'zero-variance groups per step':34} {zero:>14} "
        + (", ".join(f"{z:.0%}" for z in trl["zero_variance"]) if trl else "")
    )
    batched = ours["batched_tokens"] / ours["batched_s"]
    single = ours["single_tokens"] / ours["single_s"]
    ratio = batched / single
    print(f"batched group generation {batched:.1f} tokens/s, one at a time {single:.1f}: {ratio:.2f}x")
    if trl:
        summary["ratios"] = {
            "generation": rate(ours, "generated", "generation_s") / rate(trl, "generated", "generation_s"),
            "update": rate(ours, "trained", "update_s") / rate(trl, "trained", "update_s"),
            "wall": trl["wall_s"] / ours["wall_s"],
        }
    summary["batched_vs_single"] = batched / single
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", type=Path, default=DEFAULT_WORKLOAD)
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--setup-trl", action="store_true", help="create the TRL venv, then run")
    parser.add_argument("--trl-python", default=str(TRL_DIR / "venv" / "bin" / "python"))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--threads", type=int, help="torch threads for both trainers (default: torch's)")
    parser.add_argument("--part", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workload = json.loads(args.workload.read_text())

    if args.part:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        figures = run_ours(workload) if args.part == "ours" else run_trl(workload, args.model_dir)
        Path(args.out).write_text(json.dumps(figures))
        return

    from trainer.models import convert_smollm2

    model_dir = str(convert_smollm2())  # both trainers read the same converted weights
    trl_python = args.trl_python
    if args.setup_trl:
        trl_python = str(setup_trl())
    ours = run_part(sys.executable, "ours", args.workload, model_dir, args.threads)
    trl = None
    if not args.skip_trl:
        if not Path(trl_python).exists():
            sys.exit(f"no TRL venv at {trl_python}: run with --setup-trl once, or --skip-trl")
        trl = run_part(trl_python, "trl", args.workload, model_dir, args.threads)
    summary = report(ours, trl)
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
