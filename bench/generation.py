"""Batched generation of a GRPO iteration's first two turns, with the batch's shared prefix (the
system prompt) kept once against without sharing, in the same run.

    python bench/generation.py                                  # jira-workflows, 2 groups of 8
    python bench/generation.py --suite atlassian-core --new-tokens 64 --repeat 3
    python bench/generation.py --tasks 14 --group-size 1         # an evaluation's batch instead

The rows are what a GRPO iteration samples: two tasks (the suite's first two whose oracle
solution takes two turns or more; `--tasks`), a group of G rows each. Turn 1 is the system
prompt and the instruction; turn 2 adds the oracle's first action and the observation it got
(rendered as the agent loop renders it), continuing each row's cached turn 1 (`TurnCache`) as
the rollout loop does. SmolLM2-135M with a LoRA adapter on every linear layer (its B weights
drawn at random, so that the adapter changes the logits), sampled at temperature 0.7 for a fixed
number of new tokens (no JSON stop, so both ways generate the same count). Each way is timed
`--repeat` times, alternately; the fastest is shown.

- shared: `TransformersBackend(model, tokenizer)`, the trainer's backend;
- unshared: `TransformersBackend(model, tokenizer, share_prefix=False)`: every row encodes and
  attends to its own copy of the whole prompt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")


def two_turns(backend, episodes, group_size: int, settings) -> tuple[float, int]:
    """Seconds and generated tokens of turn 1 then turn 2 for `group_size` rows per episode."""
    from trainer.generation import TurnCache

    rows = [(e, copy) for e in episodes for copy in range(group_size)]
    keys = [(id(e), copy) for e, copy in rows]
    cache = TurnCache()
    started, tokens = time.perf_counter(), 0
    for turn in range(2):
        prompts = [e.turns[turn].prompt_ids for e, _ in rows]
        tokens += sum(
            len(g.token_ids) for g in backend.generate(prompts, settings, turn_cache=cache, keys=keys)
        )
    return time.perf_counter() - started, tokens


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default="jira-workflows")
    parser.add_argument("--tasks", type=int, default=2, help="tasks, one variant each")
    parser.add_argument("--group-size", type=int, default=8, help="rows a task")
    parser.add_argument("--new-tokens", type=int, default=48, help="new tokens a row a turn")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shared-only", action="store_true", help="skip the unshared baseline")
    parser.add_argument("--dtype", default="auto", help="float32, bf16 or auto (bf16 where the CPU has it)")
    args = parser.parse_args(argv)

    import django

    django.setup()
    import torch
    from packing import oracle_episodes

    from trainer.generation import SamplingSettings, TransformersBackend
    from trainer.models import LORA_MODULES, LoraSettings, add_lora, load_base_model

    torch.set_num_threads(args.threads)
    model, tokenizer = load_base_model("smollm2-135m", dtype=args.dtype)
    model = add_lora(model, LoraSettings(target_modules=list(LORA_MODULES["all"])))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    # one train variant a task
    episodes = [e for e in oracle_episodes(args.suite, 1, tokenizer) if len(e.turns) >= 2][: args.tasks]
    settings = SamplingSettings(max_new_tokens=args.new_tokens, temperature=0.7, stop_at_json=False, seed=1)
    ways = {
        "shared": TransformersBackend(model, tokenizer),
        "unshared": TransformersBackend(model, tokenizer, share_prefix=False),
    }
    if args.shared_only:
        del ways["unshared"]
    two_turns(ways["shared"], episodes[:1], 1, SamplingSettings(max_new_tokens=2, stop_at_json=False))
    best = {}
    for _ in range(args.repeat):
        for name, backend in ways.items():
            seconds, tokens = two_turns(backend, episodes, args.group_size, settings)
            best[name] = min(best.get(name, (seconds, tokens)), (seconds, tokens))
    lengths = [[len(t.prompt_ids) for t in e.turns[:2]] for e in episodes]
    print(
        f"{args.suite}: {len(episodes)} tasks x {args.group_size} rows, prompt tokens per turn {lengths}, "
        f"{args.new_tokens} new tokens a row a turn, {model.dtype}, {args.threads} torch thread(s)"
    )
    for name, (seconds, tokens) in best.items():
        print(f"  {name:9} {seconds:6.1f} s  {tokens / seconds:6.1f} generated tokens/s")
    if "unshared" in best:
        print(f"  shared / unshared: {best['unshared'][0] / best['shared'][0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
