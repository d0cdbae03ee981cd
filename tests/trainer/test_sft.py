import json
import random

import pytest
import torch

from trainer.grpo import make_optimizer
from trainer.logprobs import pack_micro_batches
from trainer.prompts import build_messages
from trainer.sft import (
    Demonstration,
    SFTConfig,
    demonstrations_nll,
    encode_demonstration,
    exact_turns,
    length_grouped_batches,
    schedule_factor,
    sft_train,
)

from .conftest import SYSTEM

GET = '{"method": "GET", "path": "/rest/api/3/issue/%s"}'


def demonstration(key, status="Done"):
    body = json.dumps({"key": key, "fields": {"status": {"name": status}}}, separators=(",", ":"))
    turns = [(GET % key, f"Status 200\n{body}"), (json.dumps({"final": status}), "")]
    return build_messages(SYSTEM, f"What is the status of {key}?", turns)[:-1]  # ends on the final action


def test_only_assistant_tokens_are_marked(tokenizer):
    demo = encode_demonstration(tokenizer, demonstration("OPS-1"))
    marked = [tok for tok, on in zip(demo.tokens, demo.assistant_mask, strict=True) if on]
    assert tokenizer.decode(marked) == GET % "OPS-1" + "<|im_end|>\n" + '{"final": "Done"}<|im_end|>\n'
    assert demo.tokens[: demo.start] == tokenizer.apply_chat_template(
        demonstration("OPS-1")[:2], add_generation_prompt=True, tokenize=True, return_dict=False
    )


def test_a_transcript_without_assistant_turns_is_refused(tokenizer):
    with pytest.raises(ValueError, match="at least one assistant message"):
        encode_demonstration(tokenizer, build_messages(SYSTEM, "Hi"))


def test_sft_lowers_the_loss_on_fixed_demonstrations(make_policy, tokenizer):
    policy = make_policy(rank=8, alpha=16)
    demos = [encode_demonstration(tokenizer, demonstration(f"OPS-{i}")) for i in range(4)]
    before = demonstrations_nll(policy, demos)
    history = sft_train(policy, make_optimizer(policy, 1e-2), demos, SFTConfig(epochs=3, micro_batch_size=2))
    after = demonstrations_nll(policy, demos)
    assert len(history) == 3 and history[0]["tokens"] == sum(sum(d.assistant_mask) for d in demos)
    assert history[-1]["loss"] < history[0]["loss"]
    assert after < before - 1.0


def test_a_stop_request_ends_the_epoch_at_the_next_optimizer_step(make_policy, tokenizer):
    policy = make_policy(rank=8, alpha=16)
    demos = [encode_demonstration(tokenizer, demonstration(f"OPS-{i}")) for i in range(6)]
    asked = []

    def stop_after_two_steps():
        asked.append(True)
        return len(asked) > 2

    config = SFTConfig(epochs=3, micro_batch_size=2)
    history = sft_train(policy, make_optimizer(policy, 1e-2), demos, config, should_stop=stop_after_two_steps)
    assert len(history) == 1  # no later epoch starts
    assert history[0]["steps"] == 2 and history[0]["demonstrations"] == 4
    assert history[0]["tokens"] < sum(sum(d.assistant_mask) for d in demos)


def test_schedules_decay_from_the_peak_to_zero():
    assert [schedule_factor("constant", f) for f in (0, 0.5, 1)] == [1.0, 1.0, 1.0]
    assert [schedule_factor("linear", f) for f in (0, 0.25, 1, 1.5)] == [1.0, 0.75, 0.0, 0.0]
    assert schedule_factor("cosine", 0) == 1.0 and schedule_factor("cosine", 1) == 0.0
    assert schedule_factor("cosine", 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        schedule_factor("step", 0.5)


def test_a_linear_schedule_lowers_the_rate_step_by_step_over_all_epochs(make_policy, tokenizer):
    policy = make_policy(rank=8, alpha=16)
    demos = [encode_demonstration(tokenizer, demonstration(f"OPS-{i}")) for i in range(4)]
    optimizer = make_optimizer(policy, 1e-2)
    rates = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        rates.append(optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    optimizer.step = recording_step
    config = SFTConfig(epochs=2, micro_batch_size=2, schedule="linear")
    history = sft_train(policy, optimizer, demos, config)
    assert rates == pytest.approx([1e-2, 7.5e-3, 5e-3, 2.5e-3])  # 4 steps over 2 epochs of 2
    assert history[-1]["learning_rate"] == pytest.approx(2.5e-3)

    # A caller that trains one epoch per call says how far the whole training is.
    rates.clear()
    once = SFTConfig(epochs=1, micro_batch_size=2, schedule="linear")
    sft_train(policy, optimizer, demos, once, progress=lambda share: 0.5 + share / 2)
    assert rates == pytest.approx([5e-3, 2.5e-3])  # from the rate it was made with, not the last


def test_the_constant_schedule_leaves_the_optimizer_rate_alone(make_policy, tokenizer):
    policy = make_policy(rank=8, alpha=16)
    demos = [encode_demonstration(tokenizer, demonstration(f"OPS-{i}")) for i in range(2)]
    optimizer = make_optimizer(policy, 3e-3)
    config = SFTConfig(epochs=1, micro_batch_size=1, schedule="constant")
    history = sft_train(policy, optimizer, demos, config)
    assert history[0]["learning_rate"] == 3e-3 and "initial_lr" not in optimizer.param_groups[0]


def test_exact_turns_counts_the_turns_greedy_decoding_would_reproduce(make_policy, tokenizer):
    policy = make_policy(rank=8, alpha=16).eval()
    demo = encode_demonstration(tokenizer, demonstration("OPS-1"))  # two assistant turns
    assert exact_turns(policy, [demo]) == 0.0  # an untrained tiny model writes neither

    # The same transcript with each assistant token replaced by the model's greedy choice there.
    tokens = list(demo.tokens)
    with torch.no_grad():
        for i, on in enumerate(demo.assistant_mask):
            if on:
                tokens[i] = int(policy(input_ids=torch.tensor([tokens[:i]])).logits[0, -1].argmax())
    greedy = Demonstration(tokens, demo.assistant_mask)
    assert exact_turns(policy, [greedy]) == 1.0
    last = max(i for i, on in enumerate(demo.assistant_mask) if on)
    one_off = Demonstration([*tokens[:last], tokens[last] + 1, *tokens[last + 1 :]], demo.assistant_mask)
    assert exact_turns(policy, [one_off]) == 0.5  # the second turn's last token differs
    assert exact_turns(policy, [greedy, one_off]) == 0.75


def test_micro_batches_group_demonstrations_of_similar_length():
    # Rows are padded to the longest of their micro-batch: a shuffled order put short and long
    # demonstrations together and ran twice the real tokens through the model.
    rng = random.Random(0)  # noqa: S311 - test data
    lengths = [rng.choice([40, 60, 300, 900]) for _ in range(200)]
    items = list(range(200))

    def padded(batches):
        return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)

    lengths_of_items = [lengths[i] for i in items]
    grouped = length_grouped_batches(items, lengths_of_items, 4, 2048, random.Random(1))  # noqa: S311
    assert sorted(i for batch in grouped for i in batch) == items  # each once
    assert all(len(b) <= 4 and (sum(lengths[i] for i in b) <= 2048 or len(b) == 1) for b in grouped)
    shuffled = pack_micro_batches(items, [lengths[i] for i in items], 4, 2048)
    assert padded(grouped) < 0.75 * padded(shuffled)
    assert padded(grouped) < 1.1 * sum(lengths)
    # Which demonstrations meet, and in which order, still changes with the epoch's generator.
    again = length_grouped_batches(items, lengths_of_items, 4, 2048, random.Random(2))  # noqa: S311
    assert again != grouped
