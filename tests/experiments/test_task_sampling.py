"""Which train variants each GRPO iteration samples (experiments.training.IterationSampler)."""

from collections import Counter
from types import SimpleNamespace

import pytest

from experiments.services import iteration_variants
from experiments.training import IterationSampler, TrainingError


def pool(tasks, per_task=3):
    return [SimpleNamespace(task_id=t, key=f"{t}/train/{i}") for t in tasks for i in range(per_task)]


def group(*rewards):
    return [SimpleNamespace(reward=r) for r in rewards]


def test_cycle_takes_every_variant_once_before_any_twice():
    variants = pool("abc")
    sampler = IterationSampler(variants, 2, "cycle", seed=3)

    drawn = [v.key for _ in range(9) for v in sampler.next()]

    assert sorted(drawn[:9]) == sorted(v.key for v in variants)
    assert sorted(drawn[9:]) == sorted(v.key for v in variants)  # 18 draws: two whole rounds


def test_the_dashboard_replays_the_headless_cycle():
    variants = pool("abcd")
    sampler = IterationSampler(variants, 3, "cycle", seed=7)
    headless = [[v.key for v in sampler.next()] for _ in range(6)]

    assert [[v.key for v in iteration_variants(variants, 3, 7, i)] for i in range(1, 7)] == headless


def test_spread_draws_one_variant_of_each_of_different_tasks():
    sampler = IterationSampler(pool("abcd"), 3, "spread", seed=0)

    for _ in range(20):
        chosen = sampler.next()
        assert len({v.task_id for v in chosen}) == 3


def test_a_task_seen_to_split_its_samples_comes_back_before_unseen_ones_are_all_visited():
    variants = pool(["split", *"abcdefghij"])
    sampler = IterationSampler(variants, 1, "spread", seed=0)
    sampler.observe([variants[0]], [group(0.0, 1.0)])  # spread 0.5 against 0.25 for the unseen

    drawn = Counter(sampler.next()[0].task_id for _ in range(600))

    # weights 0.5 and 10 x 0.25: about 100 draws against about 50 for each unseen task
    assert drawn["split"] > 1.5 * sum(drawn[t] for t in "abcdefghij") / 10


def test_spread_prefers_the_tasks_whose_samples_disagree():
    variants = pool(["solved", "hopeless", "half"])
    sampler = IterationSampler(variants, 1, "spread", seed=0)
    drawn = Counter()
    for _ in range(300):
        (variant,) = sampler.next()
        drawn[variant.task_id] += 1
        rewards = {"solved": (1.0,) * 4, "hopeless": (0.0,) * 4, "half": (0.0, 1.0, 0.5, 1.0)}
        sampler.observe([variant], [group(*rewards[variant.task_id])])

    # weights 0.05, 0.05 and 0.41 (the half-solved task's reward spread): about 82 % of the draws
    assert drawn["half"] > 0.7 * 300
    assert drawn["solved"] > 0 and drawn["hopeless"] > 0  # the floor brings them back now and then


def test_a_task_that_becomes_solved_loses_its_weight_gradually():
    sampler = IterationSampler(pool("a"), 1, "spread")
    (variant,) = sampler.next()

    sampler.observe([variant], [group(0.0, 1.0)])
    assert sampler.spread["a"] == pytest.approx(0.5)
    sampler.observe([variant], [group(1.0, 1.0)])
    assert sampler.spread["a"] == pytest.approx(0.25)  # a running mean, not the last group alone


def test_an_unknown_sampling_is_refused():
    with pytest.raises(TrainingError, match="cycle, spread"):
        IterationSampler(pool("a"), 1, "greedy")
