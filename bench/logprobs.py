"""The training forward and backward of SFT micro-batches, two ways, in the same run: each row on
its own after the shared system prompt (`trainer.logprobs.sequence_logprobs`, what SFT and GRPO
use), against the rows right-padded into one batch after that prefix (the baseline: how this
trainer ran them before, and what a padded batch costs any trainer).

    python bench/logprobs.py                              # atlassian-core, 30 demonstrations
    python bench/logprobs.py --suite jira-workflows --demonstrations 20 --threads 1

The demonstrations are the suite's train-split oracle transcripts in a shuffled order, packed into
micro-batches as `sft_train` packs them (SFTConfig's rows and tokens); each micro-batch runs both
ways, alternately, on SmolLM2-135M (bf16 where the CPU does it in hardware, else float32: emulated
bf16 is an order of magnitude slower) with a fresh LoRA adapter on every linear layer.
Prints the seconds of each way, demonstrations a second, the ratio, and the largest difference
between the two ways' losses (they compute the same sum, up to bf16 rounding), then a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")


def padded_nll(model, batch):
    """The baseline: the shared prefix once, then every row's rest padded to the longest, in one
    forward; summed NLL of the assistant tokens."""
    import torch

    from trainer.logprobs import MIN_SHARED_PREFIX, base_modules, common_prefix_length, prefill_shared_prefix

    decoder, head = base_modules(model)
    sequences = [d.tokens for d in batch]
    shared = min(common_prefix_length(sequences), min(d.start for d in batch) - 1)
    shared = shared if shared >= MIN_SHARED_PREFIX and len(batch) > 1 else 0
    n, width = len(batch), max(len(s) for s in sequences) - shared
    device = head.weight.device
    cache = prefill_shared_prefix(decoder, sequences[0][:shared], n, device) if shared else None
    ids = torch.zeros(n, width, dtype=torch.long, device=device)
    mask = torch.zeros(n, shared + width, dtype=torch.long, device=device)
    mask[:, :shared] = 1
    for i, sequence in enumerate(sequences):
        ids[i, : len(sequence) - shared] = torch.tensor(sequence[shared:])
        mask[i, shared : len(sequence)] = 1
    hidden = decoder(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=shared > 0)
    total = 0
    for i, demo in enumerate(batch):
        at = torch.tensor([p - shared - 1 for p, on in enumerate(demo.assistant_mask) if on], device=device)
        logits = head(hidden.last_hidden_state[i, at]).float()
        total = total - torch.log_softmax(logits, -1).gather(-1, ids[i, at + 1][:, None]).sum()
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default="atlassian-core")
    parser.add_argument("--demonstrations", type=int, default=30, help="how many to run each way")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m or tiny-random (tests)")
    args = parser.parse_args(argv)

    import django
    import torch

    django.setup()
    from experiments.training import demonstrations, load_suite_spec, suite_system_prompt, transcript_messages
    from trainer.logprobs import pack_micro_batches
    from trainer.models import LORA_MODULES, LoraSettings, PolicyConfig, load_policy
    from trainer.sft import SFTConfig, demonstration_loss, encode_demonstration

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = load_suite_spec(args.suite)
    lora = LoraSettings(target_modules=list(LORA_MODULES["all"]))
    model, tokenizer = load_policy(PolicyConfig(model=args.model, lora=lora, dtype="auto"))
    model.train()
    system = suite_system_prompt(spec, scope="used")
    per_task = -(-args.demonstrations // len(spec.tasks))
    transcripts, _skipped = demonstrations(spec, "train", per_task=per_task)
    demos = [encode_demonstration(tokenizer, transcript_messages(t, system, tokenizer)) for t in transcripts]
    random.Random(0).shuffle(demos)  # noqa: S311 - an order, not a secret
    demos = demos[: args.demonstrations]
    config = SFTConfig()
    batches = pack_micro_batches(
        demos, [len(d.tokens) for d in demos], config.micro_batch_size, config.micro_batch_tokens
    )
    ways = {"padded batch": padded_nll, "row by row": lambda m, b: demonstration_loss(m, b)[0]}
    seconds = dict.fromkeys(ways, 0.0)
    largest_difference = 0.0
    for batch in batches:
        losses = {}
        for name, way in ways.items():
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            loss = way(model, batch)
            loss.backward()
            seconds[name] += time.perf_counter() - started
            losses[name] = float(loss.detach())
        difference = abs(losses["padded batch"] - losses["row by row"]) / abs(losses["padded batch"])
        largest_difference = max(largest_difference, difference)
    real = sum(len(d.tokens) for d in demos)
    print(
        f"{args.suite}: {len(demos)} demonstrations in {len(batches)} micro-batches, "
        f"{real / len(demos):.0f} tokens each on average"
    )
    for name, spent in seconds.items():
        print(f"  {name}: {spent:.1f} s, {len(demos) / spent:.2f} demonstrations/s")
    ratio = seconds["padded batch"] / seconds["row by row"]
    print(f"  row by row {ratio:.2f}x the padded batch; losses differ by at most {largest_difference:.1e}")
    report = {
        "suite": args.suite,
        "demonstrations": len(demos),
        "micro_batches": len(batches),
        "threads": args.threads,
        "seconds": {name: round(spent, 2) for name, spent in seconds.items()},
        "speedup": round(ratio, 3),
        "largest_relative_loss_difference": largest_difference,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
