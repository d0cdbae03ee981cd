"""Attention over a prefix that every row of a generation batch shares, kept once.

A group's G samples, and the groups of one batch, share the system prompt: hundreds of tokens at
the head of every row. A KV cache that holds it once per row makes each decode step read it G
times in every layer, and on a CPU that read is most of the attention's cost (attention is bound
by memory there, not by arithmetic). Here the batch's KV cache holds only each row's own tokens;
the shared prefix's keys and values are held once (`[kv_heads, P, head_dim]` a layer) and handed
to the attention of every layer as the `shared_prefix` keyword of the decoder's forward, under
the attention implementation `SHARED_PREFIX_ATTENTION` (switched on by `shared_prefix_attention`
for the duration of a generation only; training passes keep the model's own).

A decode step (one query a row) scores all rows' queries against the prefix in one product that
reads it once, scores each row's own keys as usual, and takes one softmax over both: the same
sums as attention over the prefix repeated to every row, so the same result up to float rounding.
A longer query (a prefill) runs PyTorch's SDPA over the prefix repeated beside the row's own keys
for that one call (a temporary, nothing kept).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from trainer.logprobs import base_model

SHARED_PREFIX_ATTENTION = "rlvr_shared_prefix"

# One (keys, values) pair a layer, each `[kv_heads, P, head_dim]`.
PrefixKV = Sequence[tuple[torch.Tensor, torch.Tensor]]


def _attention(
    module, query, key, value, attention_mask, scaling=None, shared_prefix: PrefixKV | None = None, **kwargs
):
    """The attention function registered as `SHARED_PREFIX_ATTENTION` (HF's signature; `query`
    `[B, H, q, D]`, `key`/`value` `[B, kv_heads, S, D]` the rows' own tokens; returns `[B, q, H, D]`)."""
    if shared_prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    if query.shape[2] > 1:
        prefix = shared_prefix[module.layer_idx]
        return _prefill(module, query, key, value, attention_mask, scaling, prefix, **kwargs)
    prefix_keys, prefix_values = shared_prefix[module.layer_idx]
    b, h, _, d = query.shape
    kv_heads, p = key.shape[1], prefix_keys.shape[1]
    groups = h // kv_heads  # query heads per key/value head, in HF's order (kv-major)
    scale = d**-0.5 if scaling is None else scaling
    grouped = query.view(b, kv_heads, groups, d)
    # Every row's queries against the one prefix: [kv_heads, B*groups, P] -> [B, kv_heads, groups, P]
    across = grouped.transpose(0, 1).reshape(kv_heads, b * groups, d)
    prefix_scores = (across @ prefix_keys.transpose(-1, -2)).view(kv_heads, b, groups, p).transpose(0, 1)
    own_scores = grouped @ key.transpose(-1, -2)  # [B, kv_heads, groups, S]
    if attention_mask is not None:  # [B, 1, 1, S]: True (or 0.0) where a row may attend
        if attention_mask.dtype == torch.bool:
            own_scores = own_scores.masked_fill(~attention_mask, float("-inf"))
        else:
            own_scores = own_scores + attention_mask
    probs = torch.softmax(torch.cat([prefix_scores, own_scores], -1).float() * scale, -1).to(value.dtype)
    weights = probs[..., :p].transpose(0, 1).reshape(kv_heads, b * groups, p)
    out = (weights @ prefix_values).view(kv_heads, b, groups, d).transpose(0, 1) + probs[..., p:] @ value
    return out.reshape(b, h, 1, d).transpose(1, 2).contiguous(), None


def _prefill(module, query, key, value, attention_mask, scaling, prefix, **kwargs):
    """Several queries a row: SDPA over the prefix repeated beside each row's own keys."""
    prefix_keys, prefix_values = prefix
    b, _, q, _ = query.shape
    s, p = key.shape[2], prefix_keys.shape[1]
    keys = torch.cat([prefix_keys.expand(b, -1, -1, -1), key], 2)
    values = torch.cat([prefix_values.expand(b, -1, -1, -1), value], 2)
    if attention_mask is None:  # no padding: causal over the rows' own tokens, the prefix all seen
        own = (
            torch.arange(s, device=query.device)[None, :]
            <= torch.arange(s - q, s, device=query.device)[:, None]
        )
        attention_mask = own[None, None]
    if attention_mask.dtype == torch.bool:
        seen = attention_mask.new_ones(*attention_mask.shape[:-1], p)
    else:
        seen = attention_mask.new_zeros(*attention_mask.shape[:-1], p)
    mask = torch.cat([seen, attention_mask], -1)
    return sdpa_attention_forward(module, query, keys, values, mask, scaling=scaling, **kwargs)


AttentionInterface.register(SHARED_PREFIX_ATTENTION, _attention)
AttentionMaskInterface.register(SHARED_PREFIX_ATTENTION, sdpa_mask)


# Model types whose attention is Llama's (a key/value head serves consecutive query heads, no
# softcapping), so that `_attention` computes what their own attention would.
SHARED_PREFIX_MODEL_TYPES = frozenset({"llama", "qwen2", "qwen3"})


def supports_shared_prefix(model) -> bool:
    """Whether `model` can attend through `SHARED_PREFIX_ATTENTION`: a Llama-like attention with
    every layer full (no sliding window, whose mask differs by layer) under SDPA or eager."""
    config = base_model(model).config
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    return (
        config.model_type in SHARED_PREFIX_MODEL_TYPES
        and layer_types == {"full_attention"}
        and config._attn_implementation in ("sdpa", "eager")
    )


@contextmanager
def shared_prefix_attention(model) -> Iterator[None]:
    """Run `model` (a causal LM, or a peft model around one) under `SHARED_PREFIX_ATTENTION`
    inside the block, so that a decoder call given `shared_prefix=...` attends to it; without that
    keyword the attention is PyTorch's SDPA. A model `supports_shared_prefix` refuses keeps its
    own attention (its softcapping or sliding windows are not SDPA's)."""
    if not supports_shared_prefix(model):
        yield
        return
    config = base_model(model).config
    before = config._attn_implementation
    config._attn_implementation = SHARED_PREFIX_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = before


def prefix_kv(cache) -> PrefixKV:
    """The per-layer `(keys, values)` of a one-row KV cache (`prefill_shared_prefix(..., 1, ...)`),
    as `[kv_heads, P, head_dim]` tensors: the `shared_prefix` of a batch."""
    return [(layer.keys[0], layer.values[0]) for layer in cache.layers]
