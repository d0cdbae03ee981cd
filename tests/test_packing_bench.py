"""bench/packing.py counts the tokens a GRPO update runs: the shared prefix of a micro-batch once,
each row's rest, for per-turn samples (the baseline) and for turns joined per episode."""

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("packing", Path(__file__).parents[1] / "bench" / "packing.py")
packing = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(packing)


def two_turn_episode():
    from trainer.parsing import parse_action
    from trainer.rollout import Episode, Turn

    system = list(range(100, 120))  # a 20-token system prompt
    first, reply = [*system, 1, 2], [3, 4]
    second = [*first, *reply, 5, 6, 7]  # the reply, then a 3-token observation
    turns = [
        Turn(prompt, [9, 9], [0.0, 0.0], "x", parse_action("x"), None, "", "eos", 0.0)
        for prompt in (first, second)
    ]
    turns[0].completion_ids = reply
    return Episode("t", "i", turns)


def test_per_turn_samples_repeat_the_conversation_that_joined_samples_run_once():
    from trainer.grpo import episode_samples

    episode = two_turn_episode()
    baseline = packing.per_turn_samples(episode)
    joined = episode_samples(episode, 1.0)
    assert [len(s.tokens) for s in baseline] == [24, 29] and len(joined) == 1
    # Per turn: one micro-batch, the prompt shared once but for its last token (the row's own pass
    # predicts its first target), then 3 + 8 tokens of rest.
    assert packing.tokens_run(baseline, rows=8, tokens=4096) == 21 + 3 + 8
    assert packing.tokens_run(joined, rows=8, tokens=4096) == 29
    # A budget that splits them: each row alone, nothing shared.
    assert packing.tokens_run(baseline, rows=1, tokens=4096) == 24 + 29


def test_the_timed_updates_run_both_ways_and_leave_the_trainer_as_it_was():
    from trainer import grpo

    original = grpo.episode_samples
    fastest = packing.time_updates([two_turn_episode(), two_turn_episode()], 1, model="tiny-random")
    assert fastest.keys() == {"per turn", "joined"} and all(s > 0 for s in fastest.values())
    assert grpo.episode_samples is original
