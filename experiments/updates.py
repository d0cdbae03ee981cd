"""What a train task does: one update of an experiment's adapter from its stored episodes (GRPO)
or its suite's oracle demonstrations (an SFT epoch), saved as the next checkpoint version with
its metric points; and the figures of a held-out evaluation.

The update starts from version ``v - 1``'s adapter and optimizer state (Adam's state carries on
within a phase; each phase starts a new one, as the headless run does) and saves version ``v``.
"""

import os
from dataclasses import replace

from experiments.policies import (
    adapter_key,
    checkpoint_dir,
    experiment_config,
    experiment_system_prompt,
    local_checkpoint,
    publish_checkpoint,
    worker_policy,
)

_DEMONSTRATIONS: dict = {}  # (suite, tasks, variants, model, system prompt) -> (Demonstrations, skipped)


def trainer_groups(iteration, tokenizer, system):
    """The iteration's stored episodes as trainer Episodes, one group per (task, variant), with
    each turn's prompt ids rebuilt exactly as the agent loop rendered them."""
    from trainer.parsing import parse_action
    from trainer.rollout import Episode as TrainerEpisode
    from trainer.rollout import Turn, turn_prompt

    groups = {}
    rows = iteration.episodes.filter(split="train").select_related("task").prefetch_related("steps")
    for row in rows.order_by("task_id", "variant_index", "sample_index"):
        episode = TrainerEpisode(
            task_id=row.task.task_id,
            instruction=row.instruction,
            reward=row.reward,
            success=row.success,
            details=row.details,
            done=row.finished,
        )
        for step in row.steps.all():
            prompt = turn_prompt(tokenizer, system, row.instruction, episode.turns)
            if len(prompt) != step.prompt_tokens:
                raise RuntimeError(
                    f"episode {row.pk} step {step.index}: the rebuilt prompt has {len(prompt)} tokens, "
                    f"the rollout's had {step.prompt_tokens}"
                )
            episode.turns.append(
                Turn(
                    prompt,
                    step.token_ids,
                    step.logprobs,
                    step.raw_output,
                    parse_action(step.raw_output),
                    None,
                    step.observation,
                    step.finish_reason,
                    step.latency,
                )
            )
        groups.setdefault((row.task_id, row.variant_index), []).append(episode)
    return list(groups.values())


def train_update(experiment, iteration, version):
    """Load version-1's adapter (and optimizer state), update, save ``version`` and its metrics."""
    import torch
    from django.db import transaction

    from experiments.models import Checkpoint, MetricPoint
    from experiments.training import train_step
    from trainer.checkpoints import save_checkpoint
    from trainer.grpo import continue_optimizer, make_optimizer

    config = experiment_config(experiment)
    spec = experiment.suite.spec()
    system = experiment_system_prompt(experiment, spec, config)
    policy, entry = worker_policy(experiment, version - 1, config, system)
    settings = config.sft() if iteration.phase == "sft" else config.grpo()
    policy.optimizer = make_optimizer(policy.model, settings.learning_rate, settings.weight_decay)
    previous = local_checkpoint(experiment.pk, version - 1) + ".optimizer.pt" if version > 1 else None
    if previous and os.path.exists(previous):
        # The moments go on from one version to the next, across SFT -> GRPO too (as in the
        # headless run); the rate and decay are this phase's.
        policy.optimizer.load_state_dict(torch.load(previous, weights_only=True))
        continue_optimizer(policy.optimizer, policy.model, settings.learning_rate, settings.weight_decay)
    entry["loaded"] = None  # the update changes the cached adapter in place
    if iteration.phase == "sft":
        metrics = sft_epoch(policy, experiment, spec, config, settings, iteration.index)
    else:
        reference = grpo_reference(experiment, policy.model, settings)
        metrics = train_step(policy, trainer_groups(iteration, policy.tokenizer, system), settings, reference)
    name, folder = checkpoint_dir(experiment.pk, version)
    tmp = folder + ".optimizer.pt.tmp"
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    torch.save(policy.optimizer.state_dict(), tmp)
    os.replace(tmp, folder + ".optimizer.pt")
    numbers = metric_numbers(metrics)
    save_checkpoint(policy.model, folder, version, config.model, numbers)
    publish_checkpoint(experiment.pk, version)
    entry["loaded"] = adapter_key(experiment, version)
    with transaction.atomic():
        Checkpoint.objects.update_or_create(
            experiment=experiment, version=version, defaults={"path": name, "metrics": numbers}
        )
        for metric, value in numbers.items():
            MetricPoint.objects.update_or_create(
                experiment=experiment,
                split="train",
                name=metric,
                iteration=iteration.index,
                defaults={"value": value},
            )
    return metrics


def grpo_reference(experiment, model, grpo):
    """The adapter weights of the policy the GRPO phase started from, its KL's reference: the
    last SFT version's adapter, read from its checkpoint (``model``'s own weights untouched);
    None (the base model) when GRPO started from a fresh adapter or no KL is computed."""
    from trainer.checkpoints import swap_adapter
    from trainer.models import adapter_weights, set_adapter_weights

    if not (grpo.beta or grpo.track_kl) or not experiment.sft_steps:
        return None
    own = adapter_weights(model)
    swap_adapter(model, local_checkpoint(experiment.pk, experiment.sft_steps))
    reference = adapter_weights(model)
    set_adapter_weights(model, own)
    return reference


def metric_numbers(metrics):
    """The numeric metrics as metric points: per-task dicts flattened to ``name/<task>``."""
    numbers = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            numbers.update({f"{name}/{k}": float(v) for k, v in value.items() if isinstance(v, int | float)})
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers[name] = float(value)
    return numbers


def sft_epoch(policy, experiment, spec, config, sft, epoch):
    """One epoch on the suite's oracle demonstrations (experiments.training.demonstrations, kept
    per process), seeded as the headless run seeds its epoch ``epoch``."""
    from experiments.training import TrainingError, demonstrations, transcript_messages
    from trainer.sft import encode_demonstration, sft_train

    key = (experiment.suite.source_hash, tuple(config.tasks), config.train_variants)
    key += (config.observation_tokens, config.model, policy.system)
    if key not in _DEMONSTRATIONS:
        transcripts, skipped = demonstrations(
            spec, "train", tasks=config.tasks, per_task=config.train_variants
        )
        tokenizer = policy.tokenizer
        demos = [
            encode_demonstration(
                tokenizer, transcript_messages(t, policy.system, tokenizer, config.observation_tokens)
            )
            for t in transcripts
        ]
        if not demos:
            raise TrainingError("no oracle demonstration scored 1.0; SFT has nothing to learn from")
        _DEMONSTRATIONS[key] = (demos, len(skipped))
    demos, skipped = _DEMONSTRATIONS[key]
    (history,) = sft_train(
        policy.model,
        policy.optimizer,
        demos,
        replace(sft, epochs=1, seed=sft.seed + epoch - 1),
        progress=lambda share: (epoch - 1 + share) / config.sft_epochs,  # the schedule spans the epochs
    )
    return {**history, "epoch": epoch, "demonstrations": len(demos), "demonstrations_skipped": skipped}


def evaluation_figures(episodes):
    """``reward``, ``success``, and ``reward/<task>``, ``success/<task>``: means over episodes."""
    per_task = {}
    for episode in episodes:
        per_task.setdefault(episode.task.task_id, []).append(episode)
    numbers = {}
    for prefix, group in [("", episodes), *((f"/{task}", group) for task, group in sorted(per_task.items()))]:
        numbers[f"reward{prefix}"] = sum(e.reward for e in group) / len(group)
        numbers[f"success{prefix}"] = sum(e.success for e in group) / len(group)
    return numbers
