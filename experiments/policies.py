"""The policy a worker process samples and trains with, kept per process, and its checkpoints.

Each worker process loads one base model + LoRA adapter per (model, rank, alpha) once and swaps
the adapter when a task needs another experiment's or another version's: version 0 is a fresh
adapter seeded from the experiment's seed (the same in every process), version v > 0 is read from
checkpoint storage.

Checkpoints live in Django's default storage under ``experiments/<id>/checkpoints/v<version>/``
(the adapter's files), with ``v<version>.optimizer.pt`` beside it (Adam's state, for the next
update of the same phase). On a storage with local paths (the filesystem, a shared mount as
MEDIA_ROOT) they are read and written in place. On any other storage (S3-like), the train task
saves them to a local folder and uploads each file (``publish_checkpoint``), and a worker
downloads a version once into a local cache under RLVR_VAR_DIR (``local_checkpoint``).
"""

import os
import shutil
from pathlib import Path

from django.conf import settings

_POLICIES: dict = {}  # (model name, lora rank, lora alpha) -> {"model", "tokenizer", "backend", "loaded"}
_SYSTEM_PROMPTS: dict = {}  # (suite source hash, tasks, scope) -> system prompt
CHECKPOINTS = "experiments/{experiment}/checkpoints/v{version:04d}"


def set_torch_threads():
    """torch threads from RLVR_TORCH_THREADS (default 1): on shared cores, more threads than
    cores per process is several times slower (2 threads measured 6x slower than 1 on 2 cores)."""
    import torch

    torch.set_num_threads(settings.RLVR_TORCH_THREADS)


def checkpoint_name(experiment_id, version):
    """The checkpoint's folder in the default storage."""
    return CHECKPOINTS.format(experiment=experiment_id, version=version)


def _storage_path(name):
    """The local path of a storage name on a filesystem storage, else None (S3-like storages,
    and those whose path() names no real file, such as InMemoryStorage)."""
    from django.core.files.storage import FileSystemStorage, storages

    storage = storages["default"]
    return storage.path(name) if isinstance(storage, FileSystemStorage) else None


def _cache_path(name):
    return Path(settings.VAR_DIR) / "checkpoint-cache" / name


def checkpoint_dir(experiment_id, version):
    """(storage name, local folder) where a checkpoint is written: in place on a storage with
    local paths, else a local folder that ``publish_checkpoint`` uploads."""
    name = checkpoint_name(experiment_id, version)
    return name, _storage_path(name) or str(_cache_path(name))


def publish_checkpoint(experiment_id, version):
    """Upload a checkpoint written to ``checkpoint_dir``'s local folder (adapter files and the
    optimizer state beside it) to a storage without local paths; nothing to do on one with them."""
    from django.core.files import File
    from django.core.files.storage import default_storage

    name, folder = checkpoint_dir(experiment_id, version)
    if _storage_path(name) is not None:
        return
    uploads = [(f"{name}/{f.name}", f) for f in sorted(Path(folder).iterdir()) if f.is_file()]
    optimizer = Path(folder + ".optimizer.pt")
    if optimizer.exists():
        uploads.append((f"{name}.optimizer.pt", optimizer))
    for stored, local in uploads:
        default_storage.delete(stored)  # a retrained version replaces the files (save() would rename)
        with local.open("rb") as handle:
            default_storage.save(stored, File(handle))
    (Path(folder) / ".complete").touch()  # the cache holds this version whole


def local_checkpoint(experiment_id, version):
    """A local folder holding the checkpoint's files (its optimizer state at ``folder +
    ".optimizer.pt"`` when stored): the storage's own path, or a cache filled from the storage on
    first use."""
    from django.core.files.storage import default_storage

    name, folder = checkpoint_dir(experiment_id, version)
    if _storage_path(name) is not None or (Path(folder) / ".complete").exists():
        return folder
    _dirs, files = default_storage.listdir(name)
    if not files:
        raise FileNotFoundError(f"checkpoint {name} has no files in the storage")
    tmp = Path(f"{folder}.download-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for file in files:
        with default_storage.open(f"{name}/{file}", "rb") as src, (tmp / file).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    if default_storage.exists(f"{name}.optimizer.pt"):
        with (
            default_storage.open(f"{name}.optimizer.pt", "rb") as src,
            open(f"{folder}.optimizer.pt", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    (tmp / ".complete").touch()
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


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
            swap_adapter(entry["model"], local_checkpoint(experiment.pk, version))
        entry["loaded"] = adapter_key(experiment, version)
    return Policy(entry["model"], entry["tokenizer"], entry["backend"], system, config.model), entry
