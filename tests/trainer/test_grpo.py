import math

import pytest
import torch

from trainer.generation import SamplingSettings, TransformersBackend
from trainer.grpo import (
    GRPOConfig,
    build_samples,
    clipped_token_loss,
    continue_optimizer,
    episode_samples,
    group_advantages,
    grpo_iteration,
    grpo_update,
    make_optimizer,
    reference_policy,
)
from trainer.logprobs import sequence_logprobs
from trainer.models import adapter_weights
from trainer.parsing import parse_action
from trainer.prompts import build_messages, encode_prompt
from trainer.rollout import Episode, RolloutSettings, Turn

from .conftest import SYSTEM


def test_advantages_are_centred_and_scaled_within_each_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.5, 0.5]])
    advantages = group_advantages(rewards, normalize_std=True, eps=0.0)
    std = math.sqrt(4 * 0.25 / 3)  # unbiased std of [1, 0, 0, 1]
    assert advantages[0].tolist() == pytest.approx([0.5 / std, -0.5 / std, -0.5 / std, 0.5 / std])
    assert advantages[1].tolist() == pytest.approx(
        [0.5 / math.sqrt(1 / 6), -0.5 / math.sqrt(1 / 6), 0.0, 0.0]
    )


def test_advantages_without_std_normalisation_are_just_centred():
    advantages = group_advantages(torch.tensor([[1.0, 0.0, 0.25, 0.75]]), normalize_std=False)
    assert advantages[0].tolist() == pytest.approx([0.5, -0.5, -0.25, 0.25])


def test_equal_rewards_give_zero_advantages_with_the_default_eps():
    assert group_advantages(torch.tensor([[0.5, 0.5, 0.5]])).abs().sum() == 0


def test_the_clipped_loss_on_hand_computed_ratios():
    # Four one-token rows: ratio 1.5 / 0.5 / 0.5 / 1.5 with advantages +1 / +1 / -1 / -1, eps = 0.2.
    old = torch.zeros(4, 1)
    logprobs = torch.log(torch.tensor([[1.5], [0.5], [0.5], [1.5]]))
    out = clipped_token_loss(
        logprobs, old, torch.tensor([1.0, 1.0, -1.0, -1.0]), torch.ones(4, 1, dtype=torch.bool), 0.2
    )
    # -min(r A, clip(r) A): -min(1.5, 1.2), -min(0.5, 0.8), -min(-0.5, -0.8), -min(-1.5, -1.2)
    assert out.loss[:, 0].tolist() == pytest.approx([-1.2, -0.5, 0.8, 1.5])
    assert out.clipped[:, 0].tolist() == [True, False, True, False]
    assert out.kl is None


def test_the_gradient_vanishes_where_the_clip_is_active():
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 1.1]])).requires_grad_()
    out = clipped_token_loss(
        logprobs, torch.zeros(1, 3), torch.tensor([1.0]), torch.ones(1, 3, dtype=torch.bool), 0.2
    )
    out.loss.sum().backward()
    # d/dlogp of -(r * A) is -r * A where not clipped, 0 where clipped.
    assert logprobs.grad[0].tolist() == pytest.approx([0.0, -0.5, -1.1])


def test_the_k3_kl_term_on_hand_computed_numbers():
    logprobs = torch.tensor([[math.log(0.25), math.log(0.5)]])
    ref = torch.tensor([[math.log(0.5), math.log(0.5)]])  # ref - logp = ln 2, then 0
    out = clipped_token_loss(
        logprobs,
        logprobs,
        torch.tensor([0.0]),
        torch.ones(1, 2, dtype=torch.bool),
        0.2,
        ref_logprobs=ref,
        beta=0.1,
    )
    k3 = 2 - math.log(2) - 1
    assert out.kl[0].tolist() == pytest.approx([k3, 0.0])
    assert out.loss[0].tolist() == pytest.approx([0.1 * k3, 0.0])  # advantage 0: only the KL term is left


def test_masked_tokens_contribute_nothing_to_loss_or_gradient():
    logprobs = torch.tensor([[0.0, 5.0, -1.0], [2.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out = clipped_token_loss(
        logprobs, torch.zeros(2, 3), torch.tensor([1.0, -3.0]), mask, 0.2, torch.zeros(2, 3), 0.5
    )
    out.loss.sum().backward()
    assert out.loss[~mask].abs().sum() == 0 and out.kl[~mask].abs().sum() == 0
    assert logprobs.grad[~mask].abs().sum() == 0
    assert logprobs.grad[mask].abs().sum() > 0


def make_turn(prompt, completion, logprobs):
    return Turn(prompt, completion, logprobs, "x", parse_action("x"), None, "", "length", 0.0)


def test_only_generated_tokens_become_training_targets_and_turns_that_continue_are_joined():
    episodes = [
        Episode(
            "t",
            "i",
            [make_turn([1, 2, 3], [4, 5], [-0.1, -0.2]), make_turn([1, 2, 3, 4, 5, 9], [6], [-0.3])],
            1.0,
        ),
        Episode("t", "i", [make_turn([1, 2, 3], [7], [-0.4])], 0.0),
    ]
    samples, zero_variance = build_samples([episodes], GRPOConfig(normalize_std=False))
    assert zero_variance == 0
    assert [(s.tokens, s.start, s.old_logprobs, s.sampled, s.advantage) for s in samples] == [
        ([1, 2, 3, 7], 3, [-0.4], [True], -0.5),  # a group's samples shortest first (padding)
        # the second turn's prompt continues the first turn: one sequence, its observation masked
        ([1, 2, 3, 4, 5, 9, 6], 3, [-0.1, -0.2, 0.0, -0.3], [True, True, False, True], 0.5),
    ]
    assert [s.trained_tokens for s in samples] == [1, 3]


def test_a_turn_whose_prompt_does_not_continue_the_one_before_is_a_sample_of_its_own():
    # The reply was rendered back as other tokens (8 where 5 was sampled): joining would train the
    # third turn on a context it never saw.
    turns = [
        make_turn([1, 2], [4, 5], [-0.1, -0.2]),
        make_turn([1, 2, 4, 8, 9], [6], [-0.3]),
        make_turn([1, 2, 4, 8, 9, 6, 3], [7], [-0.5]),
    ]
    samples = episode_samples(Episode("t", "i", turns, 1.0), 1.0)
    assert [(s.tokens, s.start, s.sampled) for s in samples] == [
        ([1, 2, 4, 5], 2, [True, True]),
        ([1, 2, 4, 8, 9, 6, 3, 7], 5, [True, False, True]),
    ]


def test_a_joined_episode_scores_every_sampled_token_as_it_was_sampled(make_policy, tokenizer):
    """Run once as one sequence, each turn's tokens get the log-probs they were sampled with."""
    policy = make_policy()
    backend = TransformersBackend(policy, tokenizer)
    settings = SamplingSettings(max_new_tokens=6, seed=3)
    group = []
    for reward in (1.0, 0.0):
        first_prompt = encode_prompt(tokenizer, build_messages(SYSTEM, "Get OPS-1."))
        (first,) = backend.generate([first_prompt], settings)
        second_prompt = first_prompt + first.token_ids + [11, 12, 13]  # an observation
        (second,) = backend.generate([second_prompt], settings)
        turns = [
            make_turn(first_prompt, first.token_ids, first.logprobs),
            make_turn(second_prompt, second.token_ids, second.logprobs),
        ]
        group.append(Episode("get", "Get OPS-1.", turns, reward))
    metrics = grpo_update(policy, make_optimizer(policy, 0.0), [group], GRPOConfig())
    assert metrics["samples"] == 2  # one per episode, not one per turn
    assert metrics["tokens_trained"] == sum(e.generated_tokens for e in group)
    assert metrics["logprob_gap"] < 1e-4


def test_zero_variance_groups_are_counted_and_skipped_unless_asked_not_to():
    same = [Episode("a", "i", [make_turn([1, 2], [3], [-1.0])], 0.5) for _ in range(3)]
    varied = [Episode("b", "i", [make_turn([1, 2], [3], [-1.0])], r) for r in (0.0, 1.0)]
    samples, zero = build_samples([same, varied], GRPOConfig())
    assert zero == 1 and len(samples) == 2
    samples, zero = build_samples([same, varied], GRPOConfig(skip_zero_variance=False))
    assert zero == 1 and len(samples) == 5 and [s.advantage for s in samples[:3]] == [0.0, 0.0, 0.0]


@pytest.fixture
def fixed_batch(make_policy, tokenizer):
    """A policy and two groups of sampled episodes with hand-set rewards (a fixed batch)."""
    policy = make_policy(rank=8, alpha=16)
    backend = TransformersBackend(policy, tokenizer)
    groups = []
    for task, instruction, rewards in [
        ("get", "Get OPS-1.", [1.0, 0.0, 0.5, 0.0]),
        ("new", "Create WEB-2.", [0, 0, 1, 1]),
    ]:
        prompt = encode_prompt(tokenizer, build_messages(SYSTEM, instruction))
        generations = backend.generate([prompt] * 4, SamplingSettings(max_new_tokens=8, seed=len(groups)))
        groups.append(
            [
                Episode(
                    task, instruction, [make_turn(prompt, g.token_ids, g.logprobs)], reward, reward == 1.0
                )
                for g, reward in zip(generations, rewards, strict=True)
            ]
        )
    return policy, groups


def test_grpo_steps_change_the_adapter_and_lower_the_loss_on_a_fixed_batch(fixed_batch):
    policy, groups = fixed_batch
    before = adapter_weights(policy)
    optimizer = make_optimizer(policy, learning_rate=3e-3)
    config = GRPOConfig(micro_batch_size=3, optimizer_steps_per_epoch=2, inner_epochs=2, beta=0.05)
    history = [grpo_update(policy, optimizer, groups, config) for _ in range(4)]
    after = adapter_weights(policy)
    assert any(not torch.equal(before[name], after[name]) for name in before)
    losses = [m["loss"] for m in history]
    assert losses[-1] < losses[0] - 0.05, losses
    first = history[0]
    assert first["optimizer_steps"] == 4 and first["samples"] == 8
    assert first["tokens_trained"] == 2 * sum(
        len(t.completion_ids) for g in groups for e in g for t in e.turns
    )
    assert 0 <= first["kl"] < history[-1]["kl"]  # the adapter starts as the identity and drifts
    assert 0 <= first["clip_fraction"] <= 1 and first["entropy"] > 0 and first["grad_norm"] > 0
    assert first["reward_per_task"] == {"get": 0.375, "new": 0.5}
    assert first["success_rate"] == pytest.approx(3 / 8) and first["reward_max"] == 1.0
    assert first["zero_variance_fraction"] == 0.0


def test_grpo_raises_the_likelihood_of_high_reward_samples(fixed_batch):
    policy, groups = fixed_batch
    group = groups[0]  # rewards 1, 0, 0.5, 0
    sequences = [e.turns[0].prompt_ids + e.turns[0].completion_ids for e in group]
    starts = [len(e.turns[0].prompt_ids) for e in group]

    def total_logprobs():
        with torch.no_grad():
            return sequence_logprobs(policy, sequences, starts).logprobs.sum(1)

    before = total_logprobs()
    optimizer = make_optimizer(policy, learning_rate=3e-3)
    for _ in range(3):
        grpo_update(policy, optimizer, [group], GRPOConfig(epsilon=10.0))
    change = total_logprobs() - before
    assert change[0] > 0 > change[1] and change[0] > change[3]


def test_a_continued_optimizer_scales_each_weights_step_by_its_past_gradients():
    def one_step_after(history):
        """A two-weight model trained ``history`` steps at 1e-2 (SFT: the first weight's gradients
        large, then, converged, both small), then one step of gradient [1e-3, 1e-3] at 1e-4."""
        model = torch.nn.Linear(2, 1, bias=False)
        optimizer = make_optimizer(model, learning_rate=1e-2)
        for n in range(history):
            model.weight.grad = torch.tensor([[1.0 if n < history // 2 else 1e-3, 1e-3]])
            optimizer.step()
        optimizer = continue_optimizer(optimizer if history else None, model, learning_rate=1e-4)
        before = model.weight.detach().clone()
        model.weight.grad = torch.tensor([[1e-3, 1e-3]])
        optimizer.step()
        (weights,) = optimizer.param_groups[0]["params"]
        return (
            optimizer.param_groups[0]["lr"],
            optimizer.state[weights]["step"],
            (weights.detach() - before).abs()[0],
        )

    # a fresh AdamW's first step moves every weight by the rate, however small its gradient
    rate, steps, moved = one_step_after(0)
    assert rate == 1e-4 and steps == 1 and moved.tolist() == pytest.approx([1e-4, 1e-4], rel=1e-3)
    # continued, the weight whose gradients were large moves little on a small one
    rate, steps, moved = one_step_after(60)
    assert rate == 1e-4 and steps == 61
    assert moved[0] < 1e-4 / 10 < moved[1]


def test_an_update_of_only_zero_variance_groups_trains_nothing(fixed_batch):
    policy, groups = fixed_batch
    for episode in groups[0]:
        episode.reward = 0.5
    before = adapter_weights(policy)
    metrics = grpo_update(policy, make_optimizer(policy, 1e-2), groups[:1], GRPOConfig())
    assert metrics["zero_variance_groups"] == 1 and metrics["loss"] is None and metrics["tokens_trained"] == 0
    assert all(torch.equal(before[name], p) for name, p in adapter_weights(policy).items())


def test_a_grpo_iteration_rolls_out_and_updates(make_policy, tokenizer, issue_environment):
    policy = make_policy()
    backend = TransformersBackend(policy, tokenizer)
    groups = [("ops", [issue_environment("OPS-1", done_after=1) for _ in range(3)])]
    settings = RolloutSettings(max_turns=2, sampling=SamplingSettings(max_new_tokens=6, seed=0))
    episodes, metrics = grpo_iteration(
        policy, make_optimizer(policy, 1e-3), backend, tokenizer, SYSTEM, groups, settings, GRPOConfig()
    )
    assert [len(group) for group in episodes] == [3]
    assert metrics["tokens_generated"] == sum(e.generated_tokens for e in episodes[0]) > 0
    assert metrics["generation_tokens_per_s"] > 0 and metrics["seconds"] >= metrics["generation_seconds"]
    assert metrics["zero_variance_groups"] == 1  # random text never reads the issue: all rewards 0


def test_kl_can_be_tracked_without_entering_the_loss(fixed_batch):
    policy, groups = fixed_batch
    untracked = grpo_update(policy, make_optimizer(policy, 0.0), groups, GRPOConfig())
    tracked = grpo_update(policy, make_optimizer(policy, 0.0), groups, GRPOConfig(track_kl=True))
    assert untracked["kl"] is None and tracked["kl"] == pytest.approx(0.0, abs=1e-6)  # lr 0: still the base
    assert tracked["loss"] == pytest.approx(untracked["loss"], abs=1e-6)


def test_the_kl_reference_can_be_the_adapter_grpo_started_from(fixed_batch):
    policy, groups = fixed_batch
    torch.manual_seed(1)
    with torch.no_grad():  # as if SFT had trained the adapter away from the identity
        for name, p in policy.named_parameters():
            if p.requires_grad and "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    started = adapter_weights(policy)
    tracked = GRPOConfig(track_kl=True)

    to_start = grpo_update(policy, make_optimizer(policy, 0.0), groups, tracked, reference=started)
    to_base = grpo_update(policy, make_optimizer(policy, 0.0), groups, tracked)

    assert to_start["kl"] == pytest.approx(0.0, abs=1e-6)  # lr 0: still the policy GRPO started from
    assert to_base["kl"] > 0.01  # the trained adapter is far from the base model
    # the reference pass puts the policy's own weights back exactly
    assert all(torch.equal(started[name], p) for name, p in adapter_weights(policy).items())
    with (
        pytest.raises(ValueError, match="does not fit"),
        reference_policy(policy, {"lora_A.weight": torch.zeros(1)}),
    ):
        pass


def test_recomputed_old_logprobs_absorb_a_sampling_backend_that_disagrees(fixed_batch):
    policy, groups = fixed_batch
    for group in groups:  # as if another backend (bf16, vLLM) had reported log-probs 0.5 too high
        for episode in group:
            episode.turns[0].logprobs = [lp + 0.5 for lp in episode.turns[0].logprobs]
    recorded = grpo_update(policy, make_optimizer(policy, 0.0), groups, GRPOConfig())
    recomputed = grpo_update(
        policy, make_optimizer(policy, 0.0), groups, GRPOConfig(recompute_old_logprobs=True)
    )
    assert recorded["logprob_gap"] == pytest.approx(0.5, abs=1e-3)
    assert recorded["clip_fraction"] > 0.2  # ratio exp(-0.5) < 0.8 clips every negative-advantage token
    assert recomputed["clip_fraction"] == 0.0
    two_epochs = grpo_update(
        policy, make_optimizer(policy, 1e-3), groups, GRPOConfig(recompute_old_logprobs=True, inner_epochs=2)
    )
    assert two_epochs["optimizer_steps"] == 2 and two_epochs["logprob_gap"] == pytest.approx(0.5, abs=1e-3)


def test_a_bf16_policy_samples_and_updates_with_recomputed_ratios(tokenizer, issue_environment):
    from trainer.models import LoraSettings, PolicyConfig, load_policy

    policy, _ = load_policy(PolicyConfig("tiny-random", LoraSettings(rank=4, alpha=8), dtype="bf16"))
    backend = TransformersBackend(policy, tokenizer)
    envs = [("ops", [issue_environment("OPS-1", done_after=1) for _ in range(4)])]
    settings = RolloutSettings(max_turns=1, sampling=SamplingSettings(max_new_tokens=6, seed=2))
    (group,), _ = grpo_iteration(
        policy, make_optimizer(policy, 1e-3), backend, tokenizer, SYSTEM, envs, settings, GRPOConfig()
    )
    for episode, reward in zip(group, [1.0, 0.0, 0.5, 0.0], strict=True):
        episode.reward = reward
    before = adapter_weights(policy)
    metrics = grpo_update(
        policy, make_optimizer(policy, 1e-2), [group], GRPOConfig(recompute_old_logprobs=True)
    )
    assert metrics["clip_fraction"] == 0.0 and math.isfinite(metrics["loss"])
    assert any(not torch.equal(before[n], p) for n, p in adapter_weights(policy).items())


def test_a_token_budget_splits_the_update_into_more_micro_batches_with_the_same_gradient(fixed_batch):
    policy, groups = fixed_batch
    one = grpo_update(policy, make_optimizer(policy, 0.0), groups, GRPOConfig(micro_batch_size=16))
    grads_one = [p.grad for p in policy.parameters() if p.requires_grad]
    assert all(g is None for g in grads_one)  # zeroed after the step
    prompt_and_completion = len(groups[0][0].turns[0].prompt_ids) + 8
    split = grpo_update(
        policy, make_optimizer(policy, 0.0), groups, GRPOConfig(micro_batch_tokens=3 * prompt_and_completion)
    )
    assert split["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert split["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-3)
    assert split["optimizer_steps"] == one["optimizer_steps"] == 1
