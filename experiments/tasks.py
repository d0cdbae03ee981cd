"""Celery tasks of the experiments app.

Names follow the routing rule of rlvr_site/celery.py: ``rollout_*`` run on the ``rollout``
queue, ``train_*`` on the ``train`` queue. Tasks take ids and plain values, never objects.
"""

import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import replace

from celery import shared_task
from celery.signals import worker_process_init


@shared_task(bind=True)
def rollout_probe(self, index):
    """One leg of the worker self-check: proves a rollout worker picks up work."""
    return {"index": index, "worker": self.request.hostname or socket.gethostname(), "pid": os.getpid()}


@shared_task(bind=True)
def train_probe(self, results):
    """The self-check's chord body: proves a train worker runs after every rollout finished."""
    return {
        "rollouts": len(results),
        "indexes": sorted(result["index"] for result in results),
        "rollout_workers": sorted({result["worker"] for result in results}),
        "train_worker": self.request.hostname or socket.gethostname(),
    }


# --- Experiments ----------------------------------------------------------------------------------
# One iteration = a chord of rollout_group tasks (one per task-variant group of G samples) and a
# train_iteration body (experiments.services.schedule_iteration). Both are idempotent: episodes are
# written on their unique key, and an iteration whose checkpoint exists is not trained again. Both
# check the experiment's status first, so pause and cancel take effect at the next task boundary.
# Each worker process keeps one base model + LoRA adapter per (model, rank) and loads the adapter
# of the version a task needs from checkpoint storage.

_POLICIES: dict = {}  # (model name, lora rank, lora alpha) -> {"model", "tokenizer", "backend", "loaded"}
_DEMONSTRATIONS: dict = {}  # (suite, tasks, variants, model, system prompt) -> (Demonstrations, skipped)
_SYSTEM_PROMPTS: dict = {}  # (suite source hash, tasks, scope) -> system prompt
CHECKPOINTS = "experiments/{experiment}/checkpoints/v{version:04d}"


class ExperimentStopped(Exception):
    """The experiment is paused, cancelled or finished: the task does nothing."""


def set_torch_threads():
    """torch threads from RLVR_TORCH_THREADS (default 1): on shared cores, more threads than
    cores per process is several times slower (2 threads measured 6x slower than 1 on 2 cores)."""
    import torch

    torch.set_num_threads(int(os.environ.get("RLVR_TORCH_THREADS", "1")))


@worker_process_init.connect
def _on_worker_process_init(**_kwargs):
    set_torch_threads()


def checkpoint_dir(experiment_id, version):
    """(storage name, local folder) of a checkpoint in the default storage (under MEDIA_ROOT;
    shared storage between hosts is a shared mount there)."""
    from django.core.files.storage import default_storage

    name = CHECKPOINTS.format(experiment=experiment_id, version=version)
    return name, default_storage.path(name)


def _active_experiment(experiment_id):
    """The experiment, running from its first task on; ExperimentStopped unless it is active."""
    from django.utils import timezone

    from experiments.models import Experiment

    experiment = Experiment.objects.select_related("suite").get(pk=experiment_id)
    if experiment.status not in ("queued", "running"):
        raise ExperimentStopped(experiment.status)
    if experiment.status == "queued":
        Experiment.objects.filter(pk=experiment_id, status="queued").update(
            status="running", started_at=timezone.now()
        )
        experiment.refresh_from_db()
    return experiment


@contextmanager
def failures_mark_the_experiment(experiment_id):
    """Any exception in a task body marks the experiment failed with the traceback, then is
    re-raised so Celery records it too. ExperimentStopped ends the task quietly."""
    from experiments.services import fail_experiment

    try:
        yield
    except ExperimentStopped:
        return
    except Exception as error:
        fail_experiment(experiment_id, f"{type(error).__name__}: {error}", traceback.format_exc())
        raise


def _config(experiment):
    from experiments.hyperparameters import train_config

    return train_config(
        experiment.suite.name, experiment.model_name, experiment.algorithm, experiment.hyperparameters
    )


def _system_prompt(experiment, spec, config):
    from experiments.training import suite_system_prompt

    key = (experiment.suite.source_hash, tuple(config.tasks), config.tool_docs)
    if key not in _SYSTEM_PROMPTS:
        _SYSTEM_PROMPTS[key] = suite_system_prompt(spec, tasks=config.tasks, scope=config.tool_docs)
    return _SYSTEM_PROMPTS[key]


def _fresh_adapter(model, seed):
    """Re-initialise every LoRA layer from ``seed``: version 0, the same in every process
    (B is zero, so the policy equals the base model)."""
    import torch
    from peft.tuners.lora import LoraLayer

    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for adapter in module.lora_A:
                module.reset_lora_parameters(adapter, True)


def adapter_key(experiment, version):
    """What a cached adapter is: the experiment (its creation time too, should ids be reused, as
    after a database flush) and the version."""
    return experiment.pk, experiment.created_at, version


def worker_policy(experiment, version, config, system):
    """The training.Policy of ``experiment`` at adapter ``version``: the process's cached base
    model, with that version's adapter loaded (a fresh one for version 0) unless already there."""
    from experiments.training import Policy
    from trainer.checkpoints import swap_adapter
    from trainer.generation import TransformersBackend
    from trainer.models import add_lora, load_base_model

    key = (config.model, config.lora().rank, config.lora().alpha)
    entry = _POLICIES.get(key)
    if entry is None:
        set_torch_threads()
        base, tokenizer = load_base_model(config.model, device=config.device)
        model = add_lora(base, config.lora())
        entry = _POLICIES[key] = {
            "model": model,
            "tokenizer": tokenizer,
            "backend": TransformersBackend(model, tokenizer),
            "loaded": None,
        }
    if entry["loaded"] != adapter_key(experiment, version):
        entry["loaded"] = None  # half-loaded if the next line fails
        if version == 0:
            _fresh_adapter(entry["model"], config.seed)
        else:
            swap_adapter(entry["model"], checkpoint_dir(experiment.pk, version)[1])
        entry["loaded"] = adapter_key(experiment, version)
    return Policy(entry["model"], entry["tokenizer"], entry["backend"], system, config.model), entry


def _variant(spec, task, split, variant_index):
    """The variant a rollout task names, drawn again as the headless run draws it."""
    from experiments.training import suite_variants

    drawn = suite_variants(spec, split, tasks=[task.task_id], per_task=variant_index + 1)
    for variant in drawn:
        if variant.index == variant_index:
            return variant
    raise ValueError(f"task {task} has no {split} variant {variant_index} (it draws {len(drawn)})")


@shared_task(bind=True)
def rollout_group(self, experiment_id, iteration_index, task_pk, variant_index, split="train"):
    """Sample G episodes of one task variant with the iteration's policy version and store them
    with their steps. A group already stored is not sampled again (a redelivered task)."""
    from experiments.models import Episode, Iteration, Task

    with failures_mark_the_experiment(experiment_id):
        experiment = _active_experiment(experiment_id)
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        group_size = experiment.hyperparameters["group_size"] if split == "train" else 1
        key = {
            "experiment": experiment,
            "iteration": iteration,
            "task_id": task_pk,
            "variant_index": variant_index,
            "split": split,
        }
        if Episode.objects.filter(**key).count() >= group_size:
            return {"skipped": "stored"}
        from experiments.training import sample_group

        config = _config(experiment)
        spec = experiment.suite.spec()
        task = Task.objects.get(pk=task_pk)
        variant = _variant(spec, task, split, variant_index)
        # Training samples the iteration's policy; an evaluation, the one it saved (none for "eval").
        version = iteration.policy_version
        if split != "train" and iteration.phase != "eval":
            version = iteration.index
        policy, _entry = worker_policy(experiment, version, config, _system_prompt(experiment, spec, config))
        started = time.perf_counter()
        settings = config.rollout(variant.max_turns)
        if split != "train":  # held-out evaluation: greedy, the policy's best guess (trainer.evaluate)
            settings = replace(settings, sampling=replace(settings.sampling, temperature=0.0))
        episodes = sample_group(policy, variant, group_size, settings, keep_worlds=True)
        seconds = time.perf_counter() - started
        _store_group(key, version, episodes, seconds, policy.tokenizer)
        return {"episodes": len(episodes), "seconds": seconds}


def _store_group(key, policy_version, episodes, seconds, tokenizer):
    """Write a group's episodes and steps (replacing any earlier attempt's) in one transaction,
    with each call's request, response and world changes read from the episode's world, which is
    then deleted."""
    from django.db import transaction

    from experiments.environment import discard_worlds
    from experiments.models import Episode, Step
    from simulator.models import ApiCall, World

    slugs = [e.details.get("world") for e in episodes]
    worlds = {w.slug: w for w in World.objects.filter(slug__in=[s for s in slugs if s])}
    with transaction.atomic():
        for sample, episode in enumerate(episodes):
            world = worlds.get(episode.details.get("world"))
            calls = (
                list(
                    ApiCall.objects.filter(world=world, door="client")
                    .prefetch_related("changes")
                    .order_by("seq")
                )
                if world
                else []
            )
            calls = (
                calls[len(calls) - episode.details.get("calls", 0) :] if calls else []
            )  # the agent's, after setup
            details = {k: v for k, v in episode.details.items() if k != "checks"}
            row, _created = Episode.objects.update_or_create(
                **key,
                sample_index=sample,
                defaults={
                    "policy_version": policy_version,
                    "instruction": episode.instruction,
                    "reward": episode.reward,
                    "success": episode.success,
                    "checks": episode.details.get("checks", []),
                    "failure_category": _failure_category(episode),
                    "turns": len(episode.turns),
                    "finished": episode.done,
                    "tokens": episode.generated_tokens,
                    "duration": seconds / max(len(episodes), 1),
                    "world_slug": "",
                    "details": details,
                },
            )
            row.steps.all().delete()
            Step.objects.bulk_create(_steps(row, episode, calls))
    discard_worlds(list(worlds.values()))


def _steps(row, episode, calls):
    from experiments.models import Step

    calls = iter(calls)
    steps = []
    for index, turn in enumerate(episode.turns):
        call = next(calls, None) if turn.action.ok and not turn.action.is_final else None
        token_bytes, logprob_bytes = Step.pack(turn.completion_ids, turn.logprobs)
        steps.append(
            Step(
                episode=row,
                index=index,
                prompt_tokens=len(turn.prompt_ids),
                raw_output=turn.text,
                action=turn.action.as_dict() if turn.action.ok else None,
                parse_error=turn.action.error or "",
                request=(
                    {"method": call.method, "path": call.path, "query": call.query, "body": call.body}
                    if call
                    else None
                ),
                response=(
                    {"status": turn.observation.status, "body": turn.observation.body}
                    if turn.observation
                    else None
                ),
                world_changes=[
                    {
                        "action": c.action,
                        "object_type": c.object_type,
                        "object_ref": c.object_ref,
                        "field": c.field,
                        "before": c.before,
                        "after": c.after,
                    }
                    for c in (call.changes.all() if call else ())
                ],
                observation=turn.observation_text,
                token_bytes=token_bytes,
                logprob_bytes=logprob_bytes,
                finish_reason=turn.finish_reason or "",
                latency=turn.seconds,
            )
        )
    return steps


def _failure_category(episode):
    """A coarse reason for a failed episode, for filtering: format, turn limit, no calls, checks."""
    if episode.success:
        return ""
    if episode.details.get("format_errors"):
        return "format"
    if not episode.done:
        return "turn_limit"
    if not episode.details.get("calls"):
        return "no_calls"
    return "checks"


def _trainer_groups(iteration, tokenizer, system):
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


@shared_task(bind=True)
def train_iteration(self, _results, experiment_id, iteration_index):
    """The chord's body: one update (GRPO on the iteration's episodes, or an SFT epoch), checkpoint
    version ``iteration_index``, its metric points; then the evaluation, the next iteration or the
    end. A checkpoint already saved (a redelivered task) is not trained again."""
    from django.db import transaction
    from django.utils import timezone

    from experiments.models import Checkpoint, Iteration, MetricPoint
    from experiments.services import advance_experiment, evaluation_points, schedule_evaluation

    with failures_mark_the_experiment(experiment_id):
        try:
            experiment = _active_experiment(experiment_id)
        except ExperimentStopped as stopped:
            state = "cancelled" if str(stopped) == "cancelled" else "paused"
            Iteration.objects.filter(experiment_id=experiment_id, index=iteration_index).exclude(
                state="done"
            ).update(state=state)
            raise
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        version = iteration_index
        if not Checkpoint.objects.filter(experiment=experiment, version=version).exists():
            stored = iteration.episodes.filter(split="train").count()
            if stored < iteration.episodes_expected:  # an older chord of a paused-then-resumed iteration
                return {"waiting": f"{stored} of {iteration.episodes_expected} episodes"}
            Iteration.objects.filter(pk=iteration.pk).update(
                state="training", rollouts_finished_at=timezone.now(), episodes_done=stored
            )
            started = time.perf_counter()
            _train(experiment, iteration, version)
            Iteration.objects.filter(pk=iteration.pk).update(train_seconds=time.perf_counter() - started)
        with transaction.atomic():
            if iteration_index in evaluation_points(experiment):
                schedule_evaluation(experiment, iteration_index)
            else:
                advance_experiment(experiment, iteration_index)
        points = MetricPoint.objects.filter(experiment=experiment, iteration=iteration_index)
        return {"iteration": iteration_index, "metrics": dict(points.values_list("name", "value"))}


def _train(experiment, iteration, version):
    """Load version-1's adapter (and optimizer state), update, save version and its metrics."""
    import torch
    from django.db import transaction

    from experiments.models import Checkpoint, MetricPoint
    from experiments.training import train_step
    from trainer.checkpoints import save_checkpoint
    from trainer.grpo import make_optimizer

    config = _config(experiment)
    spec = experiment.suite.spec()
    system = _system_prompt(experiment, spec, config)
    policy, entry = worker_policy(experiment, version - 1, config, system)
    settings = config.sft() if iteration.phase == "sft" else config.grpo()
    policy.optimizer = make_optimizer(policy.model, settings.learning_rate, settings.weight_decay)
    # Adam's state carries on within a phase; each phase starts a new one, as the headless run does.
    previous = checkpoint_dir(experiment.pk, version - 1)[1] + ".optimizer.pt"
    if version > 1 and experiment.phase(version - 1) == iteration.phase and os.path.exists(previous):
        policy.optimizer.load_state_dict(torch.load(previous, weights_only=True))
    entry["loaded"] = None  # the update changes the cached adapter in place
    if iteration.phase == "sft":
        metrics = _sft_epoch(policy, experiment, spec, config, settings, iteration.index)
    else:
        metrics = train_step(policy, _trainer_groups(iteration, policy.tokenizer, system), settings)
    name, folder = checkpoint_dir(experiment.pk, version)
    tmp = folder + ".optimizer.pt.tmp"
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    torch.save(policy.optimizer.state_dict(), tmp)
    os.replace(tmp, folder + ".optimizer.pt")
    numbers = _numbers(metrics)
    save_checkpoint(policy.model, folder, version, config.model, numbers)
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


def _numbers(metrics):
    """The numeric metrics as metric points: per-task dicts flattened to ``name/<task>``."""
    numbers = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            numbers.update({f"{name}/{k}": float(v) for k, v in value.items() if isinstance(v, int | float)})
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers[name] = float(value)
    return numbers


def _sft_epoch(policy, experiment, spec, config, sft, epoch):
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
        policy.model, policy.optimizer, demos, replace(sft, epochs=1, seed=sft.seed + epoch - 1)
    )
    return {**history, "epoch": epoch, "demonstrations": len(demos), "demonstrations_skipped": skipped}


@shared_task(bind=True)
def train_after_evaluation(self, _results, experiment_id, iteration_index):
    """The evaluation chord's body: the held-out reward and success (overall and per task) as
    metric points of split "test", then the next iteration or the end."""
    from django.db import transaction

    from experiments.models import Iteration, MetricPoint
    from experiments.services import advance_experiment

    with failures_mark_the_experiment(experiment_id):
        try:
            experiment = _active_experiment(experiment_id)
        except ExperimentStopped as stopped:
            state = "cancelled" if str(stopped) == "cancelled" else "paused"
            Iteration.objects.filter(experiment_id=experiment_id, index=iteration_index).update(state=state)
            raise
        iteration = Iteration.objects.get(experiment=experiment, index=iteration_index)
        episodes = list(iteration.episodes.filter(split="test").select_related("task"))
        if len(episodes) < len(iteration.eval_groups):
            return {"waiting": f"{len(episodes)} of {len(iteration.eval_groups)} evaluation episodes"}
        numbers = _evaluation_figures(episodes)
        with transaction.atomic():
            for name, value in numbers.items():
                MetricPoint.objects.update_or_create(
                    experiment=experiment,
                    split="test",
                    name=name,
                    iteration=iteration_index,
                    defaults={"value": value},
                )
            advance_experiment(experiment, iteration_index)
        return {"iteration": iteration_index, "eval": numbers}


def _evaluation_figures(episodes):
    """``reward``, ``success``, and ``reward/<task>``, ``success/<task>``: means over episodes."""
    per_task = {}
    for episode in episodes:
        per_task.setdefault(episode.task.task_id, []).append(episode)
    numbers = {}
    for prefix, group in [("", episodes), *((f"/{task}", group) for task, group in sorted(per_task.items()))]:
        numbers[f"reward{prefix}"] = sum(e.reward for e in group) / len(group)
        numbers[f"success{prefix}"] = sum(e.success for e in group) / len(group)
    return numbers
