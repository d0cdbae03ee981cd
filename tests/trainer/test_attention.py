import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from trainer.attention import (
    SHARED_PREFIX_ATTENTION,
    _attention,
    shared_prefix_attention,
    supports_shared_prefix,
)
from trainer.generation import TransformersBackend


class Layer(torch.nn.Module):
    """What an attention function reads off its module: 2 query heads per key/value head."""

    layer_idx = 0
    is_causal = True
    num_key_value_groups = 2


def masks(kind, rows, queries, own):
    """The mask HF hands the attention over the rows' own keys: causal, and row 1 has 2 pads
    (`None`: no pads, causal implied; "causal": that mask spelt out)."""
    if kind is None:
        return None
    keep = torch.ones(rows, 1, queries, own, dtype=torch.bool)
    if kind != "causal":
        keep[1, ..., :2] = False
    keep &= torch.arange(own)[None, :] <= torch.arange(own - queries, own)[:, None]  # causal
    return keep if kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))


@pytest.mark.parametrize("queries", [1, 5])
@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_attention_over_a_prefix_kept_once_equals_attention_over_it_repeated_to_every_row(queries, mask):
    torch.manual_seed(0)
    rows, kv_heads, prefix_len, own, dim = 3, 2, 11, 7, 8
    query = torch.randn(rows, 2 * kv_heads, queries, dim)
    prefix = torch.randn(kv_heads, prefix_len, dim), torch.randn(kv_heads, prefix_len, dim)
    keys, values = torch.randn(rows, kv_heads, own, dim), torch.randn(rows, kv_heads, own, dim)
    own_mask = masks(mask, rows, queries, own)
    out, _ = _attention(Layer(), query, keys, values, own_mask, scaling=0.3, shared_prefix=[prefix])

    full_keys = torch.cat([prefix[0].expand(rows, -1, -1, -1), keys], 2)
    full_values = torch.cat([prefix[1].expand(rows, -1, -1, -1), values], 2)
    full_mask = masks("causal", rows, queries, own) if mask is None else own_mask
    seen = torch.ones(rows, 1, queries, prefix_len, dtype=torch.bool)
    if full_mask.dtype != torch.bool:
        seen = torch.zeros(seen.shape)
    # One query and no padding: it sees everything, and HF hands no mask
    full_mask = None if mask is None and queries == 1 else torch.cat([seen, full_mask], -1)
    expected, _ = sdpa_attention_forward(Layer(), query, full_keys, full_values, full_mask, scaling=0.3)
    assert out.shape == (rows, queries, 2 * kv_heads, dim)
    assert torch.allclose(out, expected, atol=1e-5)


def test_the_shared_prefix_attention_is_switched_on_for_the_block_only(make_policy):
    policy = make_policy()
    config = policy.get_base_model().config
    before = config._attn_implementation
    with shared_prefix_attention(policy):
        assert config._attn_implementation == SHARED_PREFIX_ATTENTION
    assert config._attn_implementation == before


def test_a_model_with_sliding_window_layers_never_shares_a_prefix(make_policy, tokenizer):
    policy = make_policy()
    assert supports_shared_prefix(policy) and TransformersBackend(policy, tokenizer).share_prefix
    config = policy.get_base_model().config
    config.layer_types = ["sliding_attention", "full_attention"]
    assert not supports_shared_prefix(policy) and not TransformersBackend(policy, tokenizer).share_prefix
    with shared_prefix_attention(policy):
        assert config._attn_implementation != SHARED_PREFIX_ATTENTION
