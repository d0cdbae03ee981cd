import pytest
import torch

from trainer.generation import JsonObjectStop, SamplingSettings, TransformersBackend, TurnCache, sample_next
from trainer.logprobs import common_prefix_length, pack_micro_batches, sequence_logprobs
from trainer.prompts import build_messages, encode_prompt

from .conftest import SYSTEM


def prompts_for(tokenizer, instructions):
    return [encode_prompt(tokenizer, build_messages(SYSTEM, text)) for text in instructions]


@pytest.mark.parametrize(
    ("chunks", "closes_at"),
    [
        (['{"a": 1}'], 0),
        (["Sure: ", '{"a"', ": {", '"b": 2}', "}", " trailing"], 4),
        (['{"s": "}{ not ', 'a brace"', "}"], 2),
        (['{"s": "say \\"}\\" ok"}'], 0),
        (["no json } here", " {", "}"], 2),
        (['{"a": [1, 2]'], None),
    ],
)
def test_the_json_stop_fires_when_the_first_object_closes(chunks, closes_at):
    stop = JsonObjectStop()
    fired = [stop.feed(chunk) for chunk in chunks]
    assert fired.index(True) == closes_at if closes_at is not None else not any(fired)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.tensor([[3.0, 2.9, -5.0, -5.0]]).repeat(200, 1)
    ids, logprobs = sample_next(
        logits, temperature=1.0, top_p=0.5, generator=torch.Generator().manual_seed(0)
    )
    assert set(ids.tolist()) == {0}
    assert torch.allclose(logprobs, torch.log_softmax(logits[0], -1)[0].expand(200))
    ids, _ = sample_next(logits, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(0))
    assert set(ids.tolist()) == {0, 1}


def test_sampling_follows_the_softmax_of_the_scaled_logits():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    logits = torch.log(probs).clamp(min=-1e4)[None].repeat(20000, 1) * 2.0  # temperature 2 undoes the * 2
    ids, logprobs = sample_next(
        logits, temperature=2.0, top_p=1.0, generator=torch.Generator().manual_seed(1)
    )
    counts = torch.bincount(ids, minlength=4) / len(ids)
    assert torch.allclose(counts, probs, atol=0.015) and counts[3] == 0
    assert torch.allclose(logprobs.exp(), probs[ids], atol=1e-5)


def test_greedy_reports_the_argmax_and_its_logprob():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    ids, logprobs = sample_next(logits, temperature=0.0, top_p=1.0, generator=None)
    assert ids.tolist() == [1]
    assert logprobs.item() == pytest.approx(torch.log_softmax(logits, -1)[0, 1].item())


def test_batched_sampling_records_the_logprobs_a_teacher_forced_pass_gives(make_policy, tokenizer):
    policy = make_policy()
    prompts = prompts_for(
        tokenizer, ["Get OPS-1.", "Get OPS-1.", "Create a bug in WEB titled 'x'.", "Get OPS-1."]
    )
    backend = TransformersBackend(policy, tokenizer)
    settings = SamplingSettings(max_new_tokens=12, temperature=0.8, top_p=0.95, seed=3)
    generations = backend.generate(prompts, settings)
    assert all(len(g.token_ids) == len(g.logprobs) > 0 for g in generations)
    assert generations[0].token_ids != generations[1].token_ids  # duplicates are sampled independently
    sequences = [p + g.token_ids for p, g in zip(prompts, generations, strict=True)]
    with torch.no_grad():
        forced = sequence_logprobs(
            policy, sequences, [len(p) for p in prompts], temperature=0.8, share_prefix=False
        )
    for row, generation in enumerate(generations):
        n = len(generation.token_ids)
        assert forced.mask[row].sum() == n
        assert torch.allclose(forced.logprobs[row, :n], torch.tensor(generation.logprobs), atol=1e-4)
    assert backend.stats.generated_tokens == sum(len(g.token_ids) for g in generations)


def test_rows_that_stop_early_leave_the_batch_and_the_others_stay_exact(make_policy, tokenizer):
    policy = make_policy()
    prompts = prompts_for(tokenizer, ["Get OPS-1."] * 3 + ["Create a bug in WEB titled 'x'."] * 3)
    backend = TransformersBackend(policy, tokenizer)
    backend.eos_ids = set(range(0, len(tokenizer), 5))  # about one token in five ends a row
    generations = backend.generate(prompts, SamplingSettings(max_new_tokens=16, seed=4))
    lengths = [len(g.token_ids) for g in generations]
    assert len(set(lengths)) > 2 and "eos" in {g.finish_reason for g in generations}
    assert all(g.finish_reason == "eos" or len(g.token_ids) == 16 for g in generations)
    sequences = [p + g.token_ids for p, g in zip(prompts, generations, strict=True)]
    with torch.no_grad():
        forced = sequence_logprobs(policy, sequences, [len(p) for p in prompts], share_prefix=False)
    for row, generation in enumerate(generations):
        expected = forced.logprobs[row, : lengths[row]]
        assert torch.allclose(expected, torch.tensor(generation.logprobs), atol=1e-4)


def test_batched_greedy_equals_one_prompt_at_a_time_with_and_without_sharing(make_policy, tokenizer):
    policy = make_policy()
    prompts = prompts_for(tokenizer, ["Get OPS-1.", "Create a bug in WEB titled 'Login fails'.", "Hi"])
    settings = SamplingSettings(max_new_tokens=10, temperature=0.0)
    shared = TransformersBackend(policy, tokenizer).generate(prompts, settings)
    unshared = TransformersBackend(policy, tokenizer, share_prefix=False).generate(prompts, settings)
    single = [TransformersBackend(policy, tokenizer).generate([p], settings)[0] for p in prompts]
    for a, b, c in zip(shared, unshared, single, strict=True):
        assert a.token_ids == b.token_ids == c.token_ids
        assert a.logprobs == pytest.approx(c.logprobs, abs=1e-4)
    hf = policy.generate(torch.tensor([prompts[1]]), max_new_tokens=10, do_sample=False)[0, len(prompts[1]) :]
    assert shared[1].token_ids == hf.tolist()[: len(shared[1].token_ids)]


def test_the_same_seed_samples_the_same_tokens(make_policy, tokenizer):
    policy = make_policy()
    prompts = prompts_for(tokenizer, ["Get OPS-1."] * 3)
    settings = SamplingSettings(max_new_tokens=8, temperature=1.0, seed=11)
    first = TransformersBackend(policy, tokenizer).generate(prompts, settings)
    again = TransformersBackend(policy, tokenizer).generate(prompts, settings)
    assert [g.token_ids for g in first] == [g.token_ids for g in again]
    assert all(g.finish_reason in ("length", "eos", "json") for g in first)


def test_shared_prefix_logprobs_and_gradients_match_separate_passes(make_policy, tokenizer):
    policy = make_policy()
    policy.train()
    prompt = prompts_for(tokenizer, ["Get OPS-1."])[0]
    sequences = [[*prompt, 100, 200, 300], [*prompt, 400, 500], [*prompt[:-2], 7, 8, 9, 10]]
    starts = [len(prompt), len(prompt), len(prompt) - 2]
    assert common_prefix_length(sequences) == len(prompt) - 2
    grads = []
    for share in (True, False):
        policy.zero_grad()
        out = sequence_logprobs(policy, sequences, starts, share_prefix=share)
        out.logprobs.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.parameters() if p.requires_grad]))
        if share:
            shared_logprobs = out.logprobs.detach()
    assert torch.allclose(shared_logprobs, out.logprobs.detach(), atol=1e-5)
    assert out.mask.sum(1).tolist() == [3, 2, 4]
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    assert grads[0].abs().sum() > 0


def test_wanted_targets_score_as_in_a_full_pass_and_the_rest_score_nothing(make_policy, tokenizer):
    policy = make_policy()
    prompt = prompts_for(tokenizer, ["Get OPS-1."])[0]
    sequences = [[*prompt, 100, 200, 300, 400], [*prompt, 500, 600], [*prompt, 700]]
    starts = [len(prompt)] * 3
    # Row 0 ends in tokens nobody wants (an observation); row 2 wants nothing at all.
    wanted = [[True, False, True, False], [False, True], [False]]
    full = sequence_logprobs(policy, sequences, starts, with_entropy=True)
    some = sequence_logprobs(policy, sequences, starts, with_entropy=True, targets=wanted)
    expected_mask = torch.tensor(
        [[True, False, True, False], [False, True, False, False], [False, False, False, False]]
    )
    assert torch.equal(some.mask, expected_mask)
    assert torch.allclose(some.logprobs[expected_mask], full.logprobs[expected_mask], atol=1e-5)
    assert torch.allclose(some.entropy[expected_mask], full.entropy[expected_mask], atol=1e-5)
    assert some.logprobs[~expected_mask].abs().sum() == 0 and some.entropy[~expected_mask].abs().sum() == 0
    none = sequence_logprobs(policy, sequences, starts, targets=[[False] * 4, [False] * 2, [False]])
    assert not none.mask.any() and none.logprobs.abs().sum() == 0


def test_micro_batches_respect_rows_and_tokens_and_keep_order():
    items = list("abcdef")
    assert pack_micro_batches(items, [10] * 6, max_rows=4, max_tokens=100) == [list("abcd"), list("ef")]
    assert pack_micro_batches(items, [10, 10, 30, 500, 5, 5], max_rows=8, max_tokens=50) == [
        ["a", "b"],
        ["c"],  # three rows of 30 would be 90
        ["d"],  # longer than the budget: alone
        ["e", "f"],
    ]
    # Rows are padded to the longest: one long item among short ones counts as long as they are.
    assert pack_micro_batches(items, [5, 5, 5, 40, 5, 5], max_rows=8, max_tokens=100) == [
        ["a", "b", "c"],
        ["d", "e"],
        ["f"],
    ]


def test_a_reply_that_opens_no_json_object_stops_after_prose_tokens(make_policy, tokenizer):
    policy = make_policy()
    prompts = prompts_for(tokenizer, ["Get OPS-1.", "Hi", "Create a bug."] * 2)
    backend = TransformersBackend(policy, tokenizer)
    prose = backend.generate(prompts, SamplingSettings(max_new_tokens=30, prose_tokens=4, seed=7))
    assert "prose" in {g.finish_reason for g in prose}
    for g in prose:
        if g.finish_reason == "prose":
            assert len(g.token_ids) == 4 and "{" not in g.text
        else:
            assert g.finish_reason in ("eos", "json") or "{" in g.text
    unlimited = backend.generate(prompts, SamplingSettings(max_new_tokens=30, prose_tokens=0, seed=7))
    assert "prose" not in {g.finish_reason for g in unlimited}
    assert max(len(g.token_ids) for g in unlimited) > 4


def test_the_next_turn_continues_each_episodes_cached_turn_and_samples_as_if_encoded_afresh(
    make_policy, tokenizer
):
    policy = make_policy()
    instructions = ["Get OPS-1.", "Create a bug in WEB titled 'Login fails'.", "Hi"]
    first_prompts = prompts_for(tokenizer, instructions)
    settings = SamplingSettings(max_new_tokens=12, temperature=0.0)
    backend, turns = TransformersBackend(policy, tokenizer), TurnCache()
    keys = ["a", "b", "c"]
    first = backend.generate(first_prompts, settings, turn_cache=turns, keys=keys)
    assert set(turns.entries) == set(keys)
    second_prompts = [
        encode_prompt(tokenizer, build_messages(SYSTEM, text, [(g.text.strip(), f"200 {n}")]))
        for n, (text, g) in enumerate(zip(instructions, first, strict=True))
    ]
    for key, prompt, before in zip(keys, second_prompts, first_prompts, strict=True):
        assert turns.reusable(key, prompt) >= len(before)  # at least the whole first prompt
    # Rows in another order, and a new episode beside them: each finds its own entry, or none.
    order = [2, 0, 1]
    prompts = [second_prompts[i] for i in order] + first_prompts[:1]
    reused = backend.generate(prompts, settings, turn_cache=turns, keys=[keys[i] for i in order] + ["new"])
    fresh = TransformersBackend(policy, tokenizer).generate(prompts, settings)
    for a, b in zip(reused, fresh, strict=True):
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
