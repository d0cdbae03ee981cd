"""How many tokens a GRPO update runs through the model for multi-turn episodes: one sample per
turn (each turn's prompt is the whole conversation before it: the baseline) against the turns of
an episode joined into one sample (trainer.grpo.episode_samples), both packed into micro-batches
as `grpo_update` packs them, each micro-batch's shared prefix counted once.

    python bench/packing.py                          # both built-in multi-turn suites
    python bench/packing.py --suite jira-workflows --per-task 4
    python bench/packing.py --suite jira-workflows --per-task 1 --time 2   # and time the updates

The episodes are the suites' oracle solutions played in the simulator and rendered exactly as
the agent loop renders a rollout (their replies tokenised as a model would have sampled them), so
the count needs no model run; it prints the tokens and the ratio. With `--time N` it also runs
`grpo_update` (learning rate 0, SmolLM2-135M in bf16 where the CPU does it in hardware, else
float32; one torch thread) on those episodes both
ways, alternately N times, and prints the fastest seconds of each.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")


def oracle_episodes(suite: str, per_task: int, tokenizer):
    """(system prompt, Episodes): each train variant's oracle transcript as a rollout's turns."""
    from experiments.training import demonstrations, load_suite_spec, suite_system_prompt
    from trainer.parsing import parse_action
    from trainer.prompts import render_observation
    from trainer.rollout import Episode, Turn, turn_prompt

    spec = load_suite_spec(suite)
    system = suite_system_prompt(spec, scope="used")
    transcripts, _skipped = demonstrations(spec, "train", per_task=per_task)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    episodes = []
    for transcript in transcripts:
        episode = Episode(suite, transcript.instruction)
        for text, observation in transcript.turns:
            prompt = turn_prompt(tokenizer, system, transcript.instruction, episode.turns)
            completion = [*tokenizer.encode(text), end]
            shown = render_observation(observation, tokenizer) if observation else ""
            action = parse_action(text)
            logprobs = [0.0] * len(completion)
            turn = Turn(prompt, completion, logprobs, text, action, observation, shown, "eos", 0.0)
            episode.turns.append(turn)
        episodes.append(episode)
    return episodes


def per_turn_samples(episode):
    """The baseline: one sample per turn, `prompt + completion`."""
    from trainer.grpo import TrainSample

    return [
        TrainSample(
            [*turn.prompt_ids, *turn.completion_ids],
            len(turn.prompt_ids),
            [0.0] * len(turn.completion_ids),
            1.0,
            [True] * len(turn.completion_ids),
        )
        for turn in episode.turns
    ]


def tokens_run(samples, rows: int, tokens: int) -> int:
    """Tokens the update's forward passes take: per micro-batch, the shared prefix once and each
    row's rest (the rule of trainer.logprobs.sequence_logprobs)."""
    from trainer.logprobs import MIN_SHARED_PREFIX, common_prefix_length, pack_micro_batches

    total = 0
    for batch in pack_micro_batches(samples, [len(s.tokens) for s in samples], rows, tokens):
        sequences = [s.tokens for s in batch]
        shared = common_prefix_length(sequences) if len(batch) > 1 else 0
        shared = min(shared, min(s.start for s in batch) - 1)
        shared = shared if shared >= MIN_SHARED_PREFIX else 0
        total += shared + sum(len(seq) - shared for seq in sequences)
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", action="append", help="default: jira-workflows and atlassian-core")
    parser.add_argument("--per-task", type=int, default=2, help="train variants per task")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="time the update N times each way")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from experiments.training import TrainConfig
    from trainer.grpo import episode_samples
    from trainer.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    config = TrainConfig().grpo()  # the headless run's micro-batches
    for suite in args.suite or ["jira-workflows", "atlassian-core"]:
        episodes = oracle_episodes(suite, args.per_task, tokenizer)
        baseline = [s for e in episodes for s in per_turn_samples(e)]
        joined = [s for e in episodes for s in episode_samples(e, 1.0)]
        assert sum(s.trained_tokens for s in baseline) == sum(s.trained_tokens for s in joined)
        before = tokens_run(baseline, config.micro_batch_size, config.micro_batch_tokens)
        after = tokens_run(joined, config.micro_batch_size, config.micro_batch_tokens)
        print(
            f"{suite}: {len(episodes)} episodes, {len(baseline)} turns, "
            f"{sum(s.trained_tokens for s in joined)} trained tokens; samples {len(baseline)} per turn -> "
            f"{len(joined)} joined; tokens run {before} -> {after} ({before / after:.2f}x fewer)"
        )
        if args.time:
            time_updates(episodes, args.time)
    return 0


def time_updates(episodes, repeats: int, model: str = "smollm2-135m") -> dict:
    """Seconds of one GRPO update (lr 0) over `episodes` in pairs of rewards 0/1, per turn vs
    joined, alternately; prints and returns the fastest of each."""
    import torch

    from experiments.training import TrainConfig, build_policy
    from trainer import grpo

    torch.set_num_threads(1)
    config = TrainConfig(model=model, dtype="auto")
    policy = build_policy(config, "")
    for i, episode in enumerate(episodes):
        episode.reward = float(i % 2)
    groups = [episodes[i : i + 2] for i in range(0, len(episodes), 2)]
    ways = {"per turn": lambda e, a: [replace(s, advantage=a) for s in per_turn_samples(e)]}
    ways["joined"] = grpo.episode_samples
    seconds = {name: [] for name in ways}
    original = grpo.episode_samples
    try:
        for _ in range(repeats):
            for name, samples in ways.items():
                grpo.episode_samples = samples
                optimizer = grpo.make_optimizer(policy.model, 0.0)
                metrics = grpo.grpo_update(policy.model, optimizer, groups, config.grpo())
                seconds[name].append(metrics["train_seconds"])
    finally:
        grpo.episode_samples = original
    fastest = {name: min(values) for name, values in seconds.items()}
    print(
        f"  update of {len(episodes)} episodes: per turn {fastest['per turn']:.1f} s, joined "
        f"{fastest['joined']:.1f} s ({fastest['per turn'] / fastest['joined']:.2f}x faster)"
    )
    return fastest


if __name__ == "__main__":
    sys.exit(main())
