"""Batched sampling behind a small backend interface.

`GenerationBackend.generate(prompts, settings)` takes token-id prompts and returns, per prompt,
the sampled token ids and their log-probs. The agent loop only talks to that interface, so a vLLM
backend for GPU hosts can replace `TransformersBackend` without touching the loop.

`TransformersBackend` runs its own decode loop (not `model.generate`) so that it can: record the
log-prob of every sampled token under the sampling temperature, stop each row at the end of its
first complete JSON object, drop finished rows from the batch, and share work between prompts:
the common prefix of the batch (the system prompt) is encoded once and kept once (each row's
cache holds only its own tokens; `trainer.attention` attends to the prefix for every row),
identical prompts (the G samples of a group on their first turn) are encoded once and their
caches repeated, and a float32 LoRA adapter is merged into the weights for the duration
(`models.lora_merged`). Given
a `TurnCache`, it also keeps each row's KV cache after its turn, so that the next turn of the same
episode (the same prompt, the reply and the observation appended) encodes only the new tokens:
without it every turn re-encodes the whole conversation, most of a multi-turn episode's cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from trainer.attention import prefix_kv, shared_prefix_attention, supports_shared_prefix
from trainer.logprobs import MIN_SHARED_PREFIX, base_modules, common_prefix_length, prefill_shared_prefix
from trainer.models import lora_merged


@dataclass
class SamplingSettings:
    """How to sample one turn. `temperature` 0 means greedy.

    With `stop_at_json`, a row also stops after `prose_tokens` tokens that have not opened a JSON
    object (0: never): such a reply is a format error however it goes on, and a prompted base
    model's prose would otherwise run to `max_new_tokens` on every turn of every episode.

    `reply_prefix` is text every reply starts with, given rather than sampled: its tokens end the
    prompt (`rollout.turn_prompt` puts them there) and the JSON stop reads it before the sampled
    tokens, so with `{"` a reply has opened its object before its first token.
    """

    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop_at_json: bool = True
    prose_tokens: int = 48
    seed: int | None = None
    reply_prefix: str = ""


@dataclass
class Generation:
    """One sampled continuation: `token_ids` and `logprobs` have the same length."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "json" (object closed), "eos", "length" or "prose" (no object opened)


@dataclass
class GenerationStats:
    """Counters a backend keeps across calls, for tokens/s figures."""

    calls: int = 0
    sequences: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


class GenerationBackend(Protocol):
    """Anything that samples continuations of token-id prompts."""

    stats: GenerationStats

    def generate(self, prompts: Sequence[Sequence[int]], settings: SamplingSettings) -> list[Generation]:
        """One `Generation` per prompt, in order."""
        ...


class JsonObjectStop:
    """Tracks brace balance over streamed text; `feed` returns True once the first object closes.

    Braces inside JSON strings (with backslash escapes) do not count.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.started = False
        self.in_string = False
        self.escaped = False

    def feed(self, text: str) -> bool:
        for char in text:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"' and self.started:
                self.in_string = True
            elif char == "{":
                self.started = True
                self.depth += 1
            elif char == "}" and self.started:
                self.depth -= 1
                if self.depth == 0:
                    return True
        return False


class BufferedLayer(DynamicLayer):
    """A KV-cache layer that writes new tokens into spare capacity.

    `DynamicLayer` concatenates the whole cache with every new token (a copy of all keys and
    values per layer per step); this one grows its buffers geometrically and hands out views. It
    writes in place, so it is for generation under `no_grad`, not for passes that need gradients.
    """

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.key_buffer = self.value_buffer = None
        self.length = 0

    def _set_views(self) -> None:
        self.keys = self.key_buffer[..., : self.length, :]
        self.values = self.value_buffer[..., : self.length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if self.key_buffer is None or end > self.key_buffer.shape[-2]:
            capacity = end + max(64, end // 2)
            grown = []
            for old, new in ((self.key_buffer, key_states), (self.value_buffer, value_states)):
                buffer = new.new_empty(*new.shape[:-2], capacity, new.shape[-1])
                if old is not None:
                    buffer[..., : self.length, :] = old[..., : self.length, :]
                grown.append(buffer)
            self.key_buffer, self.value_buffer = grown
        self.key_buffer[..., self.length : end, :] = key_states
        self.value_buffer[..., self.length : end, :] = value_states
        self.length = end
        self._set_views()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            self.key_buffer = self.key_buffer[indices]
            self.value_buffer = self.value_buffer[indices]
            self._set_views()


class BufferedCache(DynamicCache):
    """A `DynamicCache` made of `BufferedLayer`s (one per decoder layer, created on first use)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=BufferedLayer)


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row. `logits`: `[B, V]` float. Returns (ids `[B]`, log-probs `[B]`).

    The log-prob is taken under softmax(logits / temperature) before top-p filtering (as TRL
    does), which is the distribution the update recomputes. Greedy (temperature 0) reports the
    log-prob at temperature 1.
    """
    if temperature <= 0:
        log_probs = torch.log_softmax(logits, dim=-1)
        ids = logits.argmax(dim=-1)
        return ids, log_probs.gather(-1, ids[:, None]).squeeze(-1)
    log_probs = torch.log_softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)  # [B, V]
    probs = log_probs.exp()
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the token that crosses top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    # Inverse-CDF sampling: one uniform number per row (torch.multinomial draws one per vocabulary
    # entry, a large share of a small model's decode step on the CPU).
    cdf = probs.double().cumsum(-1)  # [B, V]
    # 1 - U lies in (0, 1], so a token of probability 0 is never picked.
    uniform = 1.0 - torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device, dtype=cdf.dtype)
    ids = torch.searchsorted(cdf, uniform * cdf[:, -1:]).clamp(max=cdf.shape[1] - 1).squeeze(-1)
    return ids, log_probs.gather(-1, ids[:, None]).squeeze(-1)


class TurnCache:
    """Each episode's KV cache at the end of its last turn, keyed by the caller's episode keys.

    An entry is (token ids, per-layer (keys, values) of shape `[kv_heads, T, head_dim]`) for T ids:
    the prompt and the reply but its last token (never fed to the model). The next prompt reuses
    the entry for as long as its ids match, so the cache is only ever a shortcut: the sampled
    tokens are those of encoding the whole prompt afresh (up to float rounding).
    """

    def __init__(self) -> None:
        self.entries: dict = {}

    def reusable(self, key, prompt: Sequence[int]) -> int:
        """How many leading ids of `prompt` the entry for `key` holds (at most all but one)."""
        entry = self.entries.get(key)
        if entry is None:
            return 0
        return common_prefix_length([entry[0], prompt[: len(prompt) - 1]])


class TransformersBackend:
    """Batched sampling with a Hugging Face causal LM (optionally a peft model), CPU or CUDA.

    `share_prefix=False` turns off prefix and duplicate-prompt sharing (for benchmarks/tests); a
    model whose attention `trainer.attention` cannot stand in for never shares
    (`supports_shared_prefix`).
    """

    reuses_turns = True  # generate() takes a TurnCache (see run_episodes)

    def __init__(self, model, tokenizer, share_prefix: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.share_prefix = share_prefix and supports_shared_prefix(model)
        self.stats = GenerationStats()
        self._piece_cache: dict[int, str] = {}
        eos = set()
        for source in (getattr(model, "generation_config", None), tokenizer):
            value = getattr(source, "eos_token_id", None)
            eos.update(value if isinstance(value, list) else [value] if value is not None else [])
        self.eos_ids = eos

    def _piece(self, token_id: int) -> str:
        piece = self._piece_cache.get(token_id)
        if piece is None:
            piece = self.tokenizer.decode([token_id])
            self._piece_cache[token_id] = piece
        return piece

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        settings: SamplingSettings,
        turn_cache: TurnCache | None = None,
        keys: Sequence | None = None,
    ) -> list[Generation]:
        """Sample continuations of N prompts (token-id lists) as one batch; see `Generation`.

        With a `turn_cache` and one key per prompt (an episode's id), each row starts from its
        key's cached turn where the ids match, and leaves its own cache there for the next turn.
        """
        started = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            with shared_prefix_attention(self.model), lora_merged(self.model):
                results = self._generate(prompts, settings, turn_cache, keys)
        finally:
            self.model.train(was_training)
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        self.stats.generated_tokens += sum(len(r.token_ids) for r in results)
        self.stats.seconds += time.perf_counter() - started
        return results

    def _prefill(self, prompts: Sequence[Sequence[int]]):
        """Encode the prompts; returns (cache of the rows' own tokens `[N, ...]`, the batch's
        shared prefix (`trainer.attention`; None if none), attention mask over the rows' own
        tokens `[N, K]`, next positions `[N]`, last logits `[N, V]`)."""
        decoder, head = base_modules(self.model)
        device = head.weight.device
        unique: dict[tuple[int, ...], int] = {}
        row_of = [unique.setdefault(tuple(p), len(unique)) for p in prompts]
        distinct = [list(p) for p in unique] if self.share_prefix else [list(p) for p in prompts]
        if not self.share_prefix:
            row_of = list(range(len(prompts)))
        shared = common_prefix_length(distinct) if self.share_prefix else 0
        shared = min(shared, min(len(p) for p in distinct) - 1)  # every row keeps >= 1 own token
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        prefix = None
        if shared:
            prefix = prefix_kv(prefill_shared_prefix(decoder, distinct[0][:shared], 1, device))
        rows = [(None, p[shared:], shared) for p in distinct]
        cache, attention_mask, next_pos, logits = self._encode_rows(rows, prefix)
        index = torch.tensor(row_of, dtype=torch.long, device=device)
        cache.batch_select_indices(index)
        return cache, prefix, attention_mask[index], next_pos[index], logits[index]

    def _prefill_from_turns(self, prompts: Sequence[Sequence[int]], turn_cache: TurnCache, keys: Sequence):
        """`_prefill` for rows that continue cached turns. The prompts' common prefix, as far as
        the longest-reused entry holds it, becomes the shared prefix (that entry's keys and
        values); row i's cached ids past it (up to `reused[i]`) come from its own entry, and the
        rest is encoded."""
        reused = [turn_cache.reusable(key, prompt) for key, prompt in zip(keys, prompts, strict=True)]
        source = turn_cache.entries[keys[max(range(len(prompts)), key=reused.__getitem__)]][1]
        shared = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1, max(reused))
        if not self.share_prefix or shared < MIN_SHARED_PREFIX:
            shared = 0
        prefix = [(k[:, :shared], v[:, :shared]) for k, v in source] if shared else None
        rows = []
        for key, prompt, r in zip(keys, prompts, reused, strict=True):
            end = max(r, shared)  # the row's cached ids past the shared prefix end here
            own = None
            if end > shared:
                own = [(k[:, shared:end], v[:, shared:end]) for k, v in turn_cache.entries[key][1]]
            rows.append((own, prompt[end:], end))
        cache, attention_mask, next_pos, logits = self._encode_rows(rows, prefix)
        return cache, prefix, attention_mask, next_pos, logits

    def _encode_rows(self, rows, prefix):
        """Encode each row's new ids after the shared `prefix` and its own cached keys and values,
        one row at a time, so that no row runs padding (a turn's rows differ by hundreds of
        tokens: an error observation against a page of search results). `rows`: (own per-layer
        (keys, values) `[kv_heads, C, head_dim]` or None, new ids, position of the first new id).

        Returns (the rows' own caches left-padded into one `[N, ...]`, attention mask `[N, K]`
        over them, next positions `[N]`, last logits `[N, V]`)."""
        decoder, head = base_modules(self.model)
        device = head.weight.device
        own_layers, last_hidden = [], []
        for own, ids, start in rows:
            row_cache = DynamicCache()
            for layer, (keys, values) in enumerate(own or ()):
                row_cache.update(keys[None], values[None], layer)
            hidden = decoder(
                input_ids=torch.tensor([ids], dtype=torch.long, device=device),
                position_ids=torch.arange(start, start + len(ids), device=device)[None],
                past_key_values=row_cache,
                use_cache=True,
                shared_prefix=prefix,
            ).last_hidden_state
            last_hidden.append(hidden[0, -1])
            own_layers.append([(layer.keys[0], layer.values[0]) for layer in row_cache.layers])
        widths = [layers[0][0].shape[1] for layers in own_layers]
        longest = max(widths)
        cache = BufferedCache()
        for layer in range(len(own_layers[0])):
            blocks = []
            for part in (0, 1):
                sample = own_layers[0][layer][part]
                block = sample.new_zeros(len(rows), sample.shape[0], longest, sample.shape[-1])
                for i, layers in enumerate(own_layers):
                    block[i, :, longest - widths[i] :] = layers[layer][part]
                blocks.append(block)
            cache.update(*blocks, layer)
        attention_mask = torch.zeros(len(rows), longest, dtype=torch.long, device=device)
        for i, width in enumerate(widths):
            attention_mask[i, longest - width :] = 1
        next_pos = torch.tensor([start + len(ids) for _, ids, start in rows], dtype=torch.long, device=device)
        return cache, attention_mask, next_pos, head(torch.stack(last_hidden)).float()

    def _generate(
        self,
        prompts: Sequence[Sequence[int]],
        settings: SamplingSettings,
        turn_cache: TurnCache | None = None,
        keys: Sequence | None = None,
    ) -> list[Generation]:
        n = len(prompts)
        if n == 0:
            return []
        decoder, head = base_modules(self.model)
        device = head.weight.device
        generator = None
        if settings.seed is not None:
            generator = torch.Generator(device=device).manual_seed(settings.seed)
        if turn_cache is not None and any(
            turn_cache.reusable(k, p) for k, p in zip(keys, prompts, strict=True)
        ):
            cache, prefix, attention_mask, next_pos, logits = self._prefill_from_turns(
                prompts, turn_cache, keys
            )
        else:
            cache, prefix, attention_mask, next_pos, logits = self._prefill(prompts)

        def keep_turn(row: int, i: int) -> None:
            """Save row `row` (prompt `i`) of the batch's cache into `turn_cache`."""
            if turn_cache is None:
                return
            valid = attention_mask[row].bool()
            layers = [(layer.keys[row][:, valid], layer.values[row][:, valid]) for layer in cache.layers]
            if prefix is not None:  # an entry holds the whole prompt, the shared prefix included
                layers = [
                    (torch.cat([pk, k], 1), torch.cat([pv, v], 1))
                    for (pk, pv), (k, v) in zip(prefix, layers, strict=True)
                ]
            turn_cache.entries[keys[i]] = ([*prompts[i], *tokens[i][:-1]], layers)

        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        reasons = ["length"] * n
        stops = [JsonObjectStop() for _ in range(n)]
        for stop in stops:
            stop.feed(settings.reply_prefix)
        live = list(range(n))  # original index of each row still in the batch
        for _step in range(settings.max_new_tokens):
            ids, lps = sample_next(logits, settings.temperature, settings.top_p, generator)
            keep = []
            for row, (token, lp) in enumerate(zip(ids.tolist(), lps.tolist(), strict=True)):
                i = live[row]
                tokens[i].append(token)
                logprobs[i].append(lp)
                if token in self.eos_ids:
                    reasons[i] = "eos"
                elif settings.stop_at_json and stops[i].feed(self._piece(token)):
                    reasons[i] = "json"
                elif (
                    settings.stop_at_json
                    and 0 < settings.prose_tokens <= len(tokens[i])
                    and not stops[i].started
                ):
                    reasons[i] = "prose"
                else:
                    keep.append(row)
            if not keep or _step == settings.max_new_tokens - 1:
                for row in range(len(live)):
                    keep_turn(row, live[row])
                break
            if len(keep) < len(live):
                for row in sorted(set(range(len(live))) - set(keep)):
                    keep_turn(row, live[row])
                index = torch.tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(index)
                attention_mask, next_pos, ids = attention_mask[index], next_pos[index], ids[index]
                live = [live[row] for row in keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(live), 1)], dim=1)
            hidden = decoder(
                input_ids=ids[:, None],
                attention_mask=attention_mask,
                position_ids=next_pos[:, None],
                past_key_values=cache,
                use_cache=True,
                shared_prefix=prefix,
            ).last_hidden_state[:, -1]
            logits = head(hidden).float()
            next_pos = next_pos + 1
        return [
            Generation(
                token_ids=tokens[i],
                logprobs=logprobs[i],
                text=self.tokenizer.decode(tokens[i], skip_special_tokens=True),
                finish_reason=reasons[i],
            )
            for i in range(n)
        ]
