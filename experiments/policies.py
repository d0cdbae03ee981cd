"""The policy a worker process samples and trains with, kept per process.

Each worker process loads one base model + LoRA adapter per (model, rank, alpha) once and swaps
the adapter when a task needs another experiment's or another version's: version 0 is a fresh
adapter seeded from the experiment's seed (the same in every process), version v > 0 is read from
checkpoint storage (``checkpoint_dir``).
"""

import os

_POLICIES: dict = {}  # (model name, lora rank, lora alpha) -> {"model", "tokenizer", "backend", "loaded"}
_SYSTEM_PROMPTS: dict = {}  # (suite source hash, tasks, scope) -> system prompt
CHECKPOINTS = "experiments/{experiment}/checkpoints/v{version:04d}"


def set_torch_threads():
    """torch threads from RLVR_TORCH_THREADS (default 1): on shared cores, more threads than
    cores per process is several times slower (2 threads measured 6x slower than 1 on 2 cores)."""
    import torch

    torch.set_num_threads(int(os.environ.get("RLVR_TORCH_THREADS", "1")))


def checkpoint_dir(experiment_id, version):
    """(storage name, local folder) of a checkpoint in the default storage (under MEDIA_ROOT;
    shared storage between hosts is a shared mount there)."""
    from django.core.files.storage import default_storage

    name = CHECKPOINTS.format(experiment=experiment_id, version=version)
    return name, default_storage.path(name)


def experiment_config(experiment):
    """The headless trainer's TrainConfig of an experiment (experiments.hyperparameters)."""
    from experiments.hyperparameters import train_config

    return train_config(
        experiment.suite.name, experiment.model_name, experiment.algorithm, experiment.hyperparameters
    )


def experiment_system_prompt(experiment, spec, config):
    """The suite's system prompt, built once per process (it plays an oracle per task)."""
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
    model, with that version's adapter loaded (a fresh one for version 0) unless already there.
    Returns (policy, cache entry); set ``entry["loaded"]`` to None before changing the adapter."""
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
