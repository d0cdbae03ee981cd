"""GRPO on LoRA weights, in plain torch.

One update takes groups of finished episodes (the G samples of one task form a group):

1. advantages: each episode's reward minus its group's mean, optionally divided by the group's
   std; every generated token of every turn of the episode gets that advantage. Groups whose
   rewards are all equal carry no signal: they are counted and, by default, skipped.
2. samples: an episode's turns joined into one sequence where each turn's prompt continues the
   one before (`episode_samples`), so a six-turn conversation is run once, not six times; only
   completion tokens (what the policy sampled) are trained; prompt, instruction and observation
   tokens are masked out.
3. loss per token (PPO-style clipped ratio against the log-probs recorded at sampling, plus an
   optional k3 KL term against a reference policy, `reference_policy`: the base model, by
   disabling the adapter, or the adapter GRPO started from, such as the SFT policy, its
   weights put back for the reference pass; never a second copy of the model):
       ratio = exp(logp - logp_old)
       kl    = exp(ref - logp) - (ref - logp) - 1                       (k3 estimator, >= 0)
       loss  = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + beta * kl
   averaged over all trained tokens of an optimizer step (token-level, as DAPO/TRL do).
4. several inner epochs over the samples, gradient accumulation over micro-batches, grad-norm
   clipping, AdamW on the LoRA parameters.

Micro-batches keep a group's samples together, so their shared prompt prefix is run once
(`logprobs.sequence_logprobs`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from trainer.generation import GenerationBackend
from trainer.logprobs import pack_micro_batches, sequence_logprobs
from trainer.models import adapter_weights, set_adapter_weights
from trainer.rollout import Environment, Episode, RolloutSettings, run_episodes


@dataclass
class GRPOConfig:
    """GRPO hyperparameters. `temperature` must be the sampling temperature."""

    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    epsilon: float = 0.2
    beta: float = 0.0
    inner_epochs: int = 1
    micro_batch_size: int = 16
    micro_batch_tokens: int = 4096  # prompt + completion tokens per forward (activation memory)
    optimizer_steps_per_epoch: int = 1
    max_grad_norm: float = 1.0
    normalize_std: bool = True
    skip_zero_variance: bool = True
    temperature: float = 1.0
    share_prefix: bool = True
    track_kl: bool = False  # report the KL to the reference even when beta is 0 (one more forward)
    # Ratios against log-probs recomputed by the training forward instead of those recorded at
    # sampling: for backends whose numbers differ from the trainer's (bf16, vLLM). Free with one
    # inner epoch (the ratio is then exactly 1, as in TRL); one more forward pass otherwise.
    recompute_old_logprobs: bool = False


@dataclass
class TrainSample:
    """A stretch of one episode to train on: a turn's prompt and completion, followed by each next
    turn's new prompt tokens and completion for as long as that turn's prompt continues exactly
    these tokens. Targets are the positions from `start` on; `sampled[j]` says whether position
    `start + j` was sampled by the policy (trained, with `old_logprobs[j]`) or is an observation
    or template token (masked, 0.0)."""

    tokens: list[int]
    start: int
    old_logprobs: list[float]
    advantage: float
    sampled: list[bool]

    @property
    def trained_tokens(self) -> int:
        return sum(self.sampled)


def make_optimizer(model, learning_rate: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only (the LoRA weights of a peft model)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters; wrap it with LoRA first")
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)


def continue_optimizer(
    optimizer, model, learning_rate: float, weight_decay: float = 0.0
) -> torch.optim.AdamW:
    """``optimizer`` (the SFT phase's, its moments kept) at GRPO's learning rate and weight decay,
    or a new one (``make_optimizer``) when there is none.

    A fresh AdamW's first steps move every weight by about the learning rate, whatever its
    gradient (the first step is m / sqrt(v) = g / |g|): GRPO's first handful of updates, each
    from the gradient of a few noisy groups, then nudge all of the adapter alike. Continuing the
    SFT phase's second moments scales each weight's step by how large its gradients have been.
    """
    if optimizer is None:
        return make_optimizer(model, learning_rate, weight_decay)
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = learning_rate, weight_decay
    return optimizer


def group_advantages(rewards: torch.Tensor, normalize_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """Group-relative advantages. `rewards`: `[K, G]` (K groups of G samples) -> `[K, G]`.

    A = r - mean_group(r), divided by (std_group(r) + eps) when `normalize_std` (unbiased std, as
    TRL). A group with equal rewards gets zeros.
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not normalize_std or rewards.shape[1] < 2:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


@dataclass
class TokenLoss:
    """Per-token terms, all `[N, T]` and zero where `mask` is False."""

    loss: torch.Tensor
    ratio: torch.Tensor
    clipped: torch.Tensor  # bool: the clipped branch was the active one
    kl: torch.Tensor | None


def clipped_token_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
) -> TokenLoss:
    """The GRPO per-token loss (see the module docstring).

    logprobs, old_logprobs, ref_logprobs: `[N, T]`; advantages: `[N]`; mask: `[N, T]` bool.
    """
    ratio = torch.exp(logprobs - old_logprobs)  # [N, T]
    adv = advantages[:, None]  # [N, 1]
    unclipped = ratio * adv
    clipped_value = ratio.clamp(1 - epsilon, 1 + epsilon) * adv
    loss = -torch.minimum(unclipped, clipped_value)
    clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + epsilon) & (adv > 0))
    kl = None
    if ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        kl = torch.exp(delta) - delta - 1  # k3: unbiased, always >= 0
        if beta:
            loss = loss + beta * kl
        kl = kl.masked_fill(~mask, 0.0)
    return TokenLoss(loss.masked_fill(~mask, 0.0), ratio, clipped & mask, kl)


def _pad(rows: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
    return out


def build_samples(groups: Sequence[Sequence[Episode]], config: GRPOConfig) -> tuple[list[TrainSample], int]:
    """Turn groups of episodes into training samples. Returns (samples, zero-variance groups)."""
    samples: list[TrainSample] = []
    zero_variance = 0
    for group in groups:
        rewards = torch.tensor([[episode.reward for episode in group]], dtype=torch.float32)  # [1, G]
        if len(group) < 2 or float(rewards.max() - rewards.min()) == 0.0:
            zero_variance += 1
            if config.skip_zero_variance:
                continue
        advantages = group_advantages(rewards, config.normalize_std)[0]  # [G]
        group_samples = [
            sample
            for episode, advantage in zip(group, advantages.tolist(), strict=True)
            for sample in episode_samples(episode, advantage)
        ]
        # Shortest first: a micro-batch is bounded by its rows times its longest row
        # (pack_micro_batches), and a group's samples stay together (they share the prompt), so
        # similar lengths should be neighbours.
        samples.extend(sorted(group_samples, key=lambda sample: len(sample.tokens)))
    return samples, zero_variance


def episode_samples(episode: Episode, advantage: float) -> list[TrainSample]:
    """An episode's turns as few samples as exactness allows: a turn joins the sample before it
    when its prompt starts with that sample's tokens (the usual case: the chat renders the reply
    as it was sampled), so the conversation is run once instead of once per turn (the turns'
    prompts grow with every observation); otherwise it starts a sample of its own."""
    samples: list[TrainSample] = []
    for turn in episode.turns:
        if not turn.completion_ids:
            continue
        prompt, completion = list(turn.prompt_ids), list(turn.completion_ids)
        last = samples[-1] if samples else None
        if last is not None and prompt[: len(last.tokens)] == last.tokens:
            added = len(prompt) - len(last.tokens)
            last.old_logprobs += [0.0] * added + list(turn.logprobs)
            last.sampled += [False] * added + [True] * len(completion)
            last.tokens += prompt[len(last.tokens) :] + completion
        else:
            samples.append(
                TrainSample(
                    tokens=prompt + completion,
                    start=len(prompt),
                    old_logprobs=list(turn.logprobs),
                    advantage=advantage,
                    sampled=[True] * len(completion),
                )
            )
    return samples


def reward_metrics(groups: Sequence[Sequence[Episode]]) -> dict:
    """Reward mean/std/min/max, success rate, reward and success per task, generated tokens."""
    episodes = [episode for group in groups for episode in group]
    rewards = torch.tensor([episode.reward for episode in episodes], dtype=torch.float64)
    per_task: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        per_task[episode.task_id].append(episode)
    return {
        "episodes": len(episodes),
        "reward_mean": float(rewards.mean()) if episodes else 0.0,
        "reward_std": float(rewards.std(unbiased=False)) if episodes else 0.0,
        "reward_min": float(rewards.min()) if episodes else 0.0,
        "reward_max": float(rewards.max()) if episodes else 0.0,
        "success_rate": sum(e.success for e in episodes) / len(episodes) if episodes else 0.0,
        "reward_per_task": {task: sum(e.reward for e in eps) / len(eps) for task, eps in per_task.items()},
        "success_per_task": {task: sum(e.success for e in eps) / len(eps) for task, eps in per_task.items()},
        "tokens_generated": sum(e.generated_tokens for e in episodes),
    }


@torch.no_grad()
def _frozen_logprobs(model, micro_batches: Sequence[Sequence[TrainSample]], config: GRPOConfig) -> list:
    """`[N_b, T_b]` log-probs per micro-batch from the model as it is now, without gradients."""
    return [
        sequence_logprobs(
            model,
            [s.tokens for s in b],
            [s.start for s in b],
            config.temperature,
            config.share_prefix,
            targets=[s.sampled for s in b],
        ).logprobs
        for b in micro_batches
    ]


@contextmanager
def reference_policy(model, reference: dict[str, torch.Tensor] | None = None):
    """`model` as the KL's reference policy within the block.

    `reference` None: the base model (the adapter disabled), the reference of a fresh adapter,
    which starts as the identity. Otherwise the adapter weights of the reference policy
    (`trainer.models.adapter_weights` of the policy GRPO started from: after SFT, the SFT
    policy), copied into the adapter for the block and the model's own weights put back after.
    KL to the base after SFT would pull GRPO back towards the prompted model SFT trained away
    from. Only for a pass that builds no graph to backpropagate later (the weights change in
    place)."""
    if reference is None:
        with model.disable_adapter():
            yield model
        return
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if params.keys() != reference.keys():
        missing = sorted(params.keys() ^ reference.keys())[:3]
        raise ValueError(f"the reference adapter does not fit this model's adapter: {missing}")
    own = adapter_weights(model)
    set_adapter_weights(model, reference)
    try:
        yield model
    finally:
        set_adapter_weights(model, own)


def grpo_update(
    model,
    optimizer,
    groups: Sequence[Sequence[Episode]],
    config: GRPOConfig,
    reference: dict[str, torch.Tensor] | None = None,
) -> dict:
    """One GRPO update of `model`'s trainable (LoRA) weights from finished episode groups.
    `reference`: the KL's reference adapter weights (`reference_policy`); None for the base model.

    Returns the update's metrics: the reward figures of `reward_metrics`, and `loss`, `kl` (None
    when beta is 0, unless `track_kl`), `entropy`, `clip_fraction`, `grad_norm` (means over
    optimizer steps or trained tokens), `tokens_trained` (completion tokens forwarded, all
    inner epochs),
    `logprob_gap` (mean |log-prob now - log-prob recorded at sampling| over the first epoch's
    tokens: float noise on one numeric path, larger with bf16 or another backend),
    `train_seconds`, `train_tokens_per_s`, `zero_variance_groups`, `zero_variance_fraction`,
    `samples`, `optimizer_steps`.
    """
    started = time.perf_counter()
    metrics = reward_metrics(groups)
    samples, zero_variance = build_samples(groups, config)
    metrics.update(
        groups=len(groups),
        zero_variance_groups=zero_variance,
        zero_variance_fraction=zero_variance / len(groups) if groups else 0.0,
        samples=len(samples),
        loss=None,
        kl=None,
        logprob_gap=None,
        entropy=None,
        clip_fraction=None,
        grad_norm=None,
        tokens_trained=0,
        optimizer_steps=0,
    )
    if not samples:
        metrics.update(train_seconds=time.perf_counter() - started, train_tokens_per_s=0.0)
        return metrics

    micro_batches = pack_micro_batches(
        samples, [len(s.tokens) for s in samples], config.micro_batch_size, config.micro_batch_tokens
    )
    steps = max(1, min(config.optimizer_steps_per_epoch, len(micro_batches)))
    per_step = math.ceil(len(micro_batches) / steps)
    chunks = [micro_batches[i : i + per_step] for i in range(0, len(micro_batches), per_step)]

    none: list[torch.Tensor | None] = [None] * len(micro_batches)
    ref_logprobs = none
    if config.beta or config.track_kl:
        with reference_policy(model, reference):
            ref_logprobs = _frozen_logprobs(model, micro_batches, config)
    old_logprobs = none
    if config.recompute_old_logprobs and config.inner_epochs > 1:
        old_logprobs = _frozen_logprobs(model, micro_batches, config)

    params = [p for p in model.parameters() if p.requires_grad]
    totals = defaultdict(float)
    losses, grad_norms = [], []
    was_training = model.training
    model.train()
    try:
        for epoch in range(config.inner_epochs):
            batch_index = 0
            for chunk in chunks:
                chunk_tokens = sum(s.trained_tokens for batch in chunk for s in batch)
                step_loss = 0.0
                for batch in chunk:
                    out = sequence_logprobs(
                        model,
                        [s.tokens for s in batch],
                        [s.start for s in batch],
                        config.temperature,
                        config.share_prefix,
                        with_entropy=True,
                        targets=[s.sampled for s in batch],
                    )
                    device, mask = out.logprobs.device, out.mask  # mask: the sampled tokens
                    recorded = _pad([s.old_logprobs for s in batch], mask.shape[1]).to(device)  # [N, T]
                    if epoch == 0:
                        gap = (out.logprobs.detach() - recorded).abs().masked_fill(~mask, 0.0)
                        totals["logprob_gap"] += float(gap.sum())
                    old = old_logprobs[batch_index]
                    if old is None:
                        old = out.logprobs.detach() if config.recompute_old_logprobs else recorded
                    terms = clipped_token_loss(
                        out.logprobs,
                        old,
                        torch.tensor([s.advantage for s in batch], device=device),
                        mask,
                        config.epsilon,
                        ref_logprobs[batch_index],
                        config.beta,
                    )
                    loss = terms.loss.sum() / chunk_tokens
                    loss.backward()
                    step_loss += loss.item()
                    totals["tokens"] += float(mask.sum())
                    totals["entropy"] += float(out.entropy.sum())
                    totals["clipped"] += float(terms.clipped.sum())
                    if terms.kl is not None:
                        totals["kl"] += float(terms.kl.detach().sum())
                    batch_index += 1
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(step_loss)
    finally:
        model.train(was_training)

    seconds = time.perf_counter() - started
    tokens = totals["tokens"]
    metrics.update(
        loss=sum(losses) / len(losses),
        kl=totals["kl"] / tokens if config.beta or config.track_kl else None,
        entropy=totals["entropy"] / tokens,
        clip_fraction=totals["clipped"] / tokens,
        logprob_gap=totals["logprob_gap"] / (tokens / config.inner_epochs),
        grad_norm=sum(grad_norms) / len(grad_norms),
        tokens_trained=int(tokens),
        optimizer_steps=len(losses),
        train_seconds=seconds,
        train_tokens_per_s=tokens / seconds,
    )
    return metrics


def grpo_iteration(
    model,
    optimizer,
    backend: GenerationBackend,
    tokenizer,
    system: str,
    task_groups: Sequence[tuple[str, Sequence[Environment]]],
    rollout: RolloutSettings,
    config: GRPOConfig,
    reference: dict[str, torch.Tensor] | None = None,
) -> tuple[list[list[Episode]], dict]:
    """Roll out every (task id, G environments) group in one batched run, then `grpo_update`
    (`reference`: its KL's reference adapter, None for the base model).

    Returns (episode groups, metrics): the update's metrics plus `generation_seconds`,
    `generation_tokens_per_s`, `seconds` and `tokens_per_s` (generated + trained tokens over the
    whole iteration).
    """
    started = time.perf_counter()
    environments = [env for _task, envs in task_groups for env in envs]
    task_ids = [task for task, envs in task_groups for _env in envs]
    generation_started = time.perf_counter()
    episodes = run_episodes(backend, tokenizer, system, environments, rollout, task_ids)
    generation_seconds = time.perf_counter() - generation_started
    groups, offset = [], 0
    for _task, envs in task_groups:
        groups.append(episodes[offset : offset + len(envs)])
        offset += len(envs)
    metrics = grpo_update(model, optimizer, groups, config, reference)
    seconds = time.perf_counter() - started
    generated = metrics["tokens_generated"]
    metrics.update(
        generation_seconds=generation_seconds,
        generation_tokens_per_s=generated / generation_seconds if generation_seconds else 0.0,
        seconds=seconds,
        tokens_per_s=(metrics["tokens_generated"] + metrics["tokens_trained"]) / seconds,
    )
    return groups, metrics
