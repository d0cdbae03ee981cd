"""Adapter checkpoints: a folder with the LoRA weights (safetensors), their peft config, and
`checkpoint.json` (format, version, base model, metrics).

Only the adapter travels (a few MB); workers keep the base model loaded and swap adapters when
the version changes. A checkpoint is written to a temporary sibling and renamed into place, so a
reader never sees half a checkpoint and a crashed writer leaves no partial folder behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

ADAPTER_WEIGHTS = "adapter_model.safetensors"
INFO_FILE = "checkpoint.json"
FORMAT = 1


def save_checkpoint(
    model, directory: str | Path, version: int, base_model: str, metrics: dict[str, Any] | None = None
) -> Path:
    """Save `model`'s active LoRA adapter and its metadata to `directory` (replaced if present)."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        info = {"format": FORMAT, "version": version, "base_model": base_model, "metrics": metrics or {}}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
        tmp.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_checkpoint_info(directory: str | Path) -> dict[str, Any]:
    """The `checkpoint.json` of a checkpoint folder: format, version, base_model, metrics."""
    return json.loads((Path(directory) / INFO_FILE).read_text())


def load_checkpoint(base_model, directory: str | Path, trainable: bool = False):
    """A `PeftModel`: the adapter in `directory` on a fresh (not yet wrapped) `base_model`."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(directory), is_trainable=trainable)


def swap_adapter(model, directory: str | Path) -> int:
    """Load the adapter weights in `directory` into `model`'s existing adapter (same LoRA shape).

    For workers that keep one peft model and follow new versions. Returns the checkpoint version.
    """
    from peft import set_peft_model_state_dict

    weights = load_file(str(Path(directory) / ADAPTER_WEIGHTS), device=str(next(model.parameters()).device))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"checkpoint {directory} does not fit this adapter: unexpected {unexpected[:3]}")
    return int(read_checkpoint_info(directory)["version"])
