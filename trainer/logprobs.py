"""Token log-probs of sequences that share a prefix, computing the prefix once.

Every sample of a suite starts with the same system prompt, and the G samples of a group share
the instruction too. Running the full sequence per sample (as TRL does) repeats that work G times
or more; here the common prefix goes through the model once, and each sample's rest runs on its
own, continuing the prefix's KV cache (not padded to the longest rest, which would cost as much as
real tokens). Gradients flow through the shared prefix as well (each continuation reads the same
prefix tensors, so its backward sums the samples' gradients), so the result equals a full forward
per sample up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

# A prefix shorter than this is not worth a separate forward pass.
MIN_SHARED_PREFIX = 8


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all `sequences` (0 for an empty list)."""
    if not sequences:
        return 0
    first = sequences[0]
    length = min(len(seq) for seq in sequences)
    for other in sequences[1:]:
        i = 0
        while i < length and other[i] == first[i]:
            i += 1
        length = i
        if length == 0:
            break
    return length


def base_model(model):
    """The causal LM inside a peft wrapper, or `model` itself if it has none."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def base_modules(model):
    """(decoder, output head) of a causal LM, through a peft wrapper if there is one.

    Calling the decoder and the head separately lets callers project only the positions whose
    logits they need (a full `[N, S, V]` logits tensor is most of the memory of a forward).
    LoRA layers live inside these modules, so an active adapter (or `disable_adapter()`) applies.
    """
    base = base_model(model)
    return base.get_decoder(), base.get_output_embeddings()


def prefill_shared_prefix(
    decoder, prefix: Sequence[int], copies: int, device, cache: DynamicCache | None = None
) -> DynamicCache:
    """Run `prefix` (P tokens) once and return its KV cache (`cache`, else a new DynamicCache)
    repeated to `copies` rows: each key/value tensor has shape `[copies, kv_heads, P, head_dim]`.
    """
    cache = DynamicCache() if cache is None else cache
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    decoder(input_ids=ids, past_key_values=cache, use_cache=True)
    if copies != 1:  # one copy is the prefill's own tensors
        cache.batch_select_indices(torch.zeros(copies, dtype=torch.long, device=device))
    return cache


@dataclass
class TokenLogprobs:
    """Per-target-token results on a right-padded grid.

    logprobs: `[N, T]` log p(token) (differentiable when computed with grad)
    entropy:  `[N, T]` entropy of the next-token distribution (detached), or None
    mask:     `[N, T]` bool, True where row i has a target token
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor | None
    mask: torch.Tensor


def sequence_logprobs(
    model,
    sequences: Sequence[Sequence[int]],
    starts: Sequence[int],
    temperature: float = 1.0,
    share_prefix: bool = True,
    with_entropy: bool = False,
    targets: Sequence[Sequence[bool]] | None = None,
) -> TokenLogprobs:
    """Log-probs of `sequences[i][starts[i]:]` given everything before, for N sequences.

    `sequences`: N token lists (lengths L_i); `starts[i] >= 1` is the first target position of row
    i. Returns `TokenLogprobs` with T = max(L_i - starts[i]) columns: column j of row i scores
    token `sequences[i][starts[i] + j]`. Logits are divided by `temperature` first, as during
    sampling, so ratios against sampled log-probs compare like with like. `targets[i][j]`, when
    given, says which of those tokens are wanted (the model's own turns, not the observations
    between them): only they go through the output head (a vocabulary-wide projection and
    softmax per position), the others score 0 and are False in the mask.
    """
    decoder, head = base_modules(model)
    device = head.weight.device
    n = len(sequences)
    if any(start < 1 for start in starts):
        raise ValueError("every target position needs at least one token before it")
    shared = common_prefix_length(sequences) if share_prefix and n > 1 else 0
    # The logits that predict each row's first target come from the per-row pass.
    shared = min(shared, min(starts) - 1)
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    prefix = prefill_shared_prefix(decoder, sequences[0][:shared], 1, device) if shared else None
    prefix_kv = [(layer.keys, layer.values) for layer in prefix.layers] if prefix else None

    targets_len = [len(seq) - start for seq, start in zip(sequences, starts, strict=True)]
    t_max = max(targets_len)
    offsets = torch.arange(t_max, device=device)
    mask = offsets[None, :] < torch.tensor(targets_len, device=device)[:, None]  # [N, T]
    if targets is not None:
        wanted = torch.zeros_like(mask)
        for i, row in enumerate(targets):
            wanted[i, : len(row)] = torch.tensor(list(row), dtype=torch.bool)
        mask &= wanted
    rows, columns = mask.nonzero(as_tuple=True)  # the M scored targets, row by row
    # One forward per row, on its own tokens after the shared prefix (whose KV it continues):
    # batched rows are padded to the longest, and the padded positions cost as much as real ones
    # (1.49x slower on atlassian-core's SFT micro-batches, where lengths vary 47-1,138 tokens:
    # bench/logprobs.py).
    picked, target_ids = [], []
    for i, sequence in enumerate(sequences):
        row_columns = columns[rows == i]
        if len(row_columns) == 0:
            continue
        # Row i's target j sits at index starts[i] - shared + j of its rest; it is predicted one
        # step earlier. Tokens after the last target (an observation) are not run.
        at = row_columns + (starts[i] - shared - 1)
        rest = list(sequence[shared : shared + int(at[-1]) + 2])
        ids = torch.tensor([rest], dtype=torch.long, device=device)
        cache = DynamicCache(ddp_cache_data=prefix_kv) if prefix_kv else None
        out = decoder(input_ids=ids, past_key_values=cache, use_cache=cache is not None)
        hidden = out.last_hidden_state[0]  # [len(rest), H]
        picked.append(hidden[at])  # [M_i, H]
        target_ids.append(ids[0, at + 1])
    if not picked:  # nothing wanted
        zeros = torch.zeros(mask.shape, device=device)
        return TokenLogprobs(zeros, zeros.clone() if with_entropy else None, mask)
    logits = head(torch.cat(picked)).float() / temperature  # [M, V]
    log_probs = torch.log_softmax(logits, dim=-1)
    scored = log_probs.gather(-1, torch.cat(target_ids)[:, None])[:, 0]  # [M]
    token_logprobs = torch.zeros(mask.shape, dtype=log_probs.dtype, device=device)
    token_logprobs = token_logprobs.index_put((rows, columns), scored)  # [N, T], differentiable
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = torch.zeros(mask.shape, dtype=log_probs.dtype, device=device)
            entropy[rows, columns] = -(log_probs.exp() * log_probs).sum(-1)
    return TokenLogprobs(token_logprobs, entropy, mask)


def pack_micro_batches(items: Sequence, lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list]:
    """Consecutive runs of `items` with at most `max_rows` items and `max_tokens` tokens each,
    counted as every row padded to the run's longest (by `lengths`; an item longer than
    `max_tokens` goes alone). When the forward padded its rows, counting the real lengths let one
    long episode among short ones pad a micro-batch to three times its budget (13 GB, killed for
    memory); rows now run one by one (`sequence_logprobs`), and the rule stays an upper bound on
    the activations a micro-batch holds until its backward, and keeps the optimizer steps SFT's
    recipes were tuned with. Order is kept, so samples of one group stay together and share their
    prompt prefix."""
    batches: list[list] = []
    longest = 0
    for item, length in zip(items, lengths, strict=True):
        rows = len(batches[-1]) + 1 if batches else 1
        if not batches or rows > max(1, max_rows) or rows * max(longest, length) > max_tokens:
            batches.append([])
            longest = 0
        batches[-1].append(item)
        longest = max(longest, length)
    return batches
