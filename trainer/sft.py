"""Supervised fine-tuning on demonstrations: next-token loss on the assistant's tokens only.

A demonstration is a chat transcript in the trainer's prompt format (system, instruction, then
assistant actions and user observations; see `prompts.build_messages`), e.g. an oracle solution
rendered by the suites. It is the next-token baseline RLVR is compared against, and a warm start
for GRPO.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from trainer.logprobs import pack_micro_batches, sequence_logprobs

# Learning-rate schedules: the peak rate throughout, or decaying from it to 0 by the end.
SCHEDULES = ("constant", "linear", "cosine")


def schedule_factor(schedule: str, done: float) -> float:
    """The share of the peak learning rate to use once `done` (0 to 1) of the training is done."""
    done = min(max(done, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - done
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")


@dataclass
class SFTConfig:
    """SFT hyperparameters: an optimizer step every `accumulation_steps` micro-batches."""

    learning_rate: float = 2e-3  # LoRA (rank 16, all linear layers); 2e-4 barely moved in 2 epochs
    schedule: str = "linear"  # a name of SCHEDULES; bench/sft.py: linear beat constant
    weight_decay: float = 0.0
    epochs: int = 2
    micro_batch_size: int = 8
    micro_batch_tokens: int = 4096  # transcript tokens per forward (activation memory)
    accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 0
    share_prefix: bool = True
    # Micro-batches of demonstrations of similar length (length_grouped_batches) instead of the
    # shuffled order's neighbours: when rows ran padded to the longest, a shuffled batch of
    # atlassian-core ran twice its real tokens through the model (rows now run one by one, so it
    # saves little). Off by default: at the same wall-clock budget the shuffled order scored
    # better held-out in both A/Bs of bench/sft.py (docs/benchmarks.md), with one micro-batch a
    # step and with two, although slower then.
    group_by_length: bool = False


@dataclass
class Demonstration:
    """Token ids of one transcript (L ints) and a same-length mask, True on assistant tokens."""

    tokens: list[int]
    assistant_mask: list[bool]

    @property
    def start(self) -> int:
        return self.assistant_mask.index(True)


# Demonstrations are sorted by length within windows of this many micro-batches of a shuffled
# order: long enough for neighbours of similar length, short enough that an epoch still mixes.
LENGTH_WINDOW_BATCHES = 16


def length_grouped_batches(
    items: Sequence, lengths: Sequence[int], max_rows: int, max_tokens: int, rng: random.Random
) -> list[list]:
    """Micro-batches (as `pack_micro_batches` packs them) of items of similar length, in random
    order. `items` come shuffled; each window of `LENGTH_WINDOW_BATCHES * max_rows` of them is
    sorted by length and packed, and the micro-batches of all windows are shuffled together, so
    which items meet still changes from epoch to epoch while a row is rarely padded far."""
    window = LENGTH_WINDOW_BATCHES * max(1, max_rows)
    batches: list[list] = []
    for first in range(0, len(items), window):
        chunk = sorted(range(first, min(first + window, len(items))), key=lambda i: lengths[i])
        chunk_items, chunk_lengths = [items[i] for i in chunk], [lengths[i] for i in chunk]
        batches += pack_micro_batches(chunk_items, chunk_lengths, max_rows, max_tokens)
    rng.shuffle(batches)
    return batches


def _encode(tokenizer, messages: list[dict], generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=False
    )
    return list(ids)


def encode_demonstration(tokenizer, messages: list[dict]) -> Demonstration:
    """Tokenise a transcript through the chat template and mark its assistant tokens.

    Each assistant turn's tokens are those between the prompt rendered up to it (with the
    generation header, exactly what the policy sees when it acts) and the transcript rendered
    through it, so the end-of-turn token is learned too.
    """
    full = _encode(tokenizer, messages, generation_prompt=False)
    mask = [False] * len(full)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _encode(tokenizer, messages[:index], generation_prompt=True)
        through = _encode(tokenizer, messages[: index + 1], generation_prompt=False)
        if full[: len(through)] != through or through[: len(before)] != before:
            raise ValueError("this chat template does not render turns as prefixes of the transcript")
        for position in range(len(before), len(through)):
            mask[position] = True
    if not any(mask):
        raise ValueError("a demonstration needs at least one assistant message")
    return Demonstration(full, mask)


def demonstration_loss(
    model, batch: Sequence[Demonstration], share_prefix: bool = True
) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood of the assistant tokens of a batch, and their count.

    Returns (scalar tensor with grad, number of assistant tokens).
    """
    out = sequence_logprobs(
        model,
        [d.tokens for d in batch],
        [d.start for d in batch],
        share_prefix=share_prefix,
        targets=[d.assistant_mask[d.start :] for d in batch],
    )  # [N, T], zero off the assistant's tokens
    return -out.logprobs.sum(), int(out.mask.sum())


def sft_train(
    model,
    optimizer,
    demonstrations: Sequence[Demonstration],
    config: SFTConfig,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[float], float] | None = None,
) -> list[dict]:
    """Train on demonstrations for `config.epochs` epochs; one metrics dict per epoch.

    Each dict has `epoch`, `loss` (mean NLL per assistant token), `tokens`, `seconds`,
    `tokens_per_s`, `grad_norm` (mean), `steps` (optimizer steps), `demonstrations` (how many
    it trained on) and `learning_rate` (of its last step). `should_stop()` is asked before each
    optimizer step (a time budget): when it says so, the epoch ends there, its dict covering the
    steps taken, and no other starts. Unless `config.schedule` is constant, the optimizer's rate
    (the one it was made with, kept as `initial_lr`) decays over the whole training:
    `progress(f)`, given the share f of this call's steps taken, says how much of the whole is
    done (for a caller that trains an epoch per call, or to a time budget); by default, f.
    """
    rng = random.Random(config.seed)  # noqa: S311 - shuffling, not secrets
    params = [p for p in model.parameters() if p.requires_grad]
    history = []
    was_training = model.training
    model.train()
    try:
        for epoch in range(config.epochs):
            started = time.perf_counter()
            order = list(demonstrations)
            rng.shuffle(order)
            lengths = [len(d.tokens) for d in order]
            pack = (config.micro_batch_size, config.micro_batch_tokens)
            if config.group_by_length:
                batches = length_grouped_batches(order, lengths, *pack, rng)
            else:
                batches = pack_micro_batches(order, lengths, *pack)
            accumulate = max(1, config.accumulation_steps)
            total_nll, total_tokens, norms, seen = 0.0, 0, [], 0
            stopped = False
            for first in range(0, len(batches), accumulate):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                if config.schedule != "constant":
                    share = (epoch + first / len(batches)) / config.epochs
                    factor = schedule_factor(config.schedule, progress(share) if progress else share)
                    for param_group in optimizer.param_groups:  # the peak: the rate it was made with
                        param_group["lr"] = param_group.setdefault("initial_lr", param_group["lr"]) * factor
                group = batches[first : first + accumulate]
                seen += sum(len(batch) for batch in group)
                step_tokens = sum(sum(d.assistant_mask) for batch in group for d in batch)
                for batch in group:
                    nll, count = demonstration_loss(model, batch, config.share_prefix)
                    (nll / step_tokens).backward()
                    total_nll += float(nll.detach())
                    total_tokens += count
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - started
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": total_nll / total_tokens if total_tokens else math.nan,
                    "tokens": total_tokens,
                    "seconds": seconds,
                    "tokens_per_s": total_tokens / seconds if seconds else 0.0,
                    "grad_norm": sum(norms) / len(norms) if norms else 0.0,
                    "steps": len(norms),
                    "demonstrations": seen,
                    "learning_rate": optimizer.param_groups[0]["lr"],
                }
            )
            if stopped:
                break
    finally:
        model.train(was_training)
    return history


@torch.no_grad()
def demonstrations_nll(model, demonstrations: Sequence[Demonstration], micro_batch_size: int = 8) -> float:
    """Mean NLL per assistant token over `demonstrations`, without training (eval mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i in range(0, len(demonstrations), micro_batch_size):
            nll, n = demonstration_loss(model, demonstrations[i : i + micro_batch_size])
            total, count = total + float(nll), count + n
    finally:
        model.train(was_training)
    return total / count


@torch.no_grad()
def exact_turns(model, demonstrations: Sequence[Demonstration]) -> float:
    """Share of the assistant turns (runs of assistant tokens) whose every token is the model's
    most likely next token given the transcript before it: the turns greedy decoding would
    reproduce exactly, found with one forward per demonstration instead of generation."""
    from trainer.logprobs import base_modules

    decoder, head = base_modules(model)
    was_training = model.training
    model.eval()
    exact = total = 0
    try:
        for demo in demonstrations:
            ids = torch.tensor([demo.tokens], device=head.weight.device)
            hidden = decoder(input_ids=ids).last_hidden_state[0]  # [L, H]
            positions = [i for i, on in enumerate(demo.assistant_mask) if on]
            predicted = head(hidden[[i - 1 for i in positions]]).argmax(-1).tolist()
            right = {i for i, token in zip(positions, predicted, strict=True) if demo.tokens[i] == token}
            turn_ok, previous = None, None
            for i in positions:
                if previous is None or i != previous + 1:  # a new turn begins
                    if turn_ok is not None:
                        exact, total = exact + turn_ok, total + 1
                    turn_ok = True
                turn_ok = turn_ok and i in right
                previous = i
            exact, total = exact + bool(turn_ok), total + 1
    finally:
        model.train(was_training)
    return exact / total if total else 0.0
