import json

from trainer.generation import Generation, GenerationStats, SamplingSettings, TransformersBackend
from trainer.rollout import RolloutSettings, run_episodes, turn_prompt

from .conftest import SYSTEM


class ScriptedBackend:
    """Answers each prompt with the next scripted text of its episode (found by the instruction)."""

    def __init__(self, tokenizer, scripts):
        self.tokenizer, self.scripts = tokenizer, scripts
        self.batches = []
        self.stats = GenerationStats()

    def generate(self, prompts, settings):
        self.batches.append([self.tokenizer.decode(p) for p in prompts])
        out = []
        for text in self.batches[-1]:
            key = next(k for k in self.scripts if f"status of {k}?" in text)
            reply = self.scripts[key].pop(0)
            ids = self.tokenizer.encode(reply, add_special_tokens=False)
            out.append(Generation(ids, [-0.5] * len(ids), reply, "json"))
        return out


def test_the_loop_feeds_observations_back_and_stops_each_episode_at_its_own_turn(
    tokenizer, issue_environment
):
    get = '{"method": "GET", "path": "/rest/api/3/issue/%s"}'
    scripts = {
        "OPS-1": [get % "OPS-1", '{"final": "It is Done"}'],
        "OPS-2": ["I think it is done.", get % "OPS-2", '```json\n{"final": "Done"}\n```'],
        "OPS-3": [get % "OPS-9", get % "OPS-9", get % "OPS-9", get % "OPS-9"],
    }
    backend = ScriptedBackend(tokenizer, scripts)
    envs = [
        issue_environment("OPS-1"),
        issue_environment("OPS-2"),
        issue_environment("OPS-3", status="To Do"),
    ]
    episodes = run_episodes(backend, tokenizer, SYSTEM, envs, RolloutSettings(max_turns=3), ["a", "b", "c"])

    assert [len(b) for b in backend.batches] == [3, 3, 2]  # OPS-1 finished after two turns
    assert [len(e.turns) for e in episodes] == [2, 3, 3]
    assert [(e.reward, e.success, e.done) for e in episodes] == [
        (1.0, True, True),
        (1.0, True, True),
        (0.5, False, False),
    ]
    first, second = episodes[0].turns
    assert first.action.method == "GET" and first.observation.status == 200
    assert first.observation_text == 'Status 200\n{"key":"OPS-1","fields":{"status":{"name":"Done"}}}'
    assert second.action.is_final and second.observation is None
    # The second prompt holds the first action and its observation, in the chat template.
    assert tokenizer.decode(second.prompt_ids).endswith(
        f"<|im_start|>assistant\n{get % 'OPS-1'}<|im_end|>\n"
        f"<|im_start|>user\n{first.observation_text}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert turn_prompt(tokenizer, SYSTEM, episodes[1].instruction, episodes[1].turns[:2]) == (
        episodes[1].turns[2].prompt_ids
    )  # a trainer holding only the transcript rebuilds the exact prompt
    format_error = episodes[1].turns[0]
    assert not format_error.action.ok and format_error.observation.status is None
    assert format_error.observation_text.startswith("Error\nNo JSON object found")
    assert episodes[2].turns[0].observation.status == 404
    assert episodes[2].details == {"read": True, "answered": False}
    assert [e.task_id for e in episodes] == ["a", "b", "c"]
    assert all(len(t.completion_ids) == len(t.logprobs) for e in episodes for t in e.turns)


def test_a_reply_prefix_ends_every_prompt_and_starts_every_reply(tokenizer, issue_environment):
    # The model samples only what follows the given '{"'.
    scripts = {"OPS-1": ['method": "GET", "path": "/rest/api/3/issue/OPS-1"}', 'final": "Done"}']}
    backend = ScriptedBackend(tokenizer, scripts)
    settings = RolloutSettings(max_turns=3, sampling=SamplingSettings(reply_prefix='{"'))
    (episode,) = run_episodes(backend, tokenizer, SYSTEM, [issue_environment("OPS-1")], settings)

    assert (episode.reward, episode.success) == (1.0, True)
    first, second = episode.turns
    assert first.text == '{"method": "GET", "path": "/rest/api/3/issue/OPS-1"}'
    assert first.action.method == "GET"
    assert tokenizer.decode(first.prompt_ids).endswith('<|im_start|>assistant\n{"')
    # The next prompt shows the whole reply, then the prefix again.
    assert tokenizer.decode(second.prompt_ids).endswith(
        f"<|im_start|>assistant\n{first.text}<|im_end|>\n"
        f'<|im_start|>user\n{first.observation_text}<|im_end|>\n<|im_start|>assistant\n{{"'
    )
    assert turn_prompt(tokenizer, SYSTEM, episode.instruction, episode.turns[:1], '{"') == second.prompt_ids


def test_a_reply_prefix_that_opens_the_object_is_never_prose(make_policy, tokenizer):
    backend = TransformersBackend(make_policy(), tokenizer)
    prompt = turn_prompt(tokenizer, SYSTEM, "What is the status of OPS-1?", [])
    plain = SamplingSettings(max_new_tokens=6, prose_tokens=3, seed=0)
    prefixed = SamplingSettings(max_new_tokens=6, prose_tokens=3, seed=0, reply_prefix="{")
    assert {g.finish_reason for g in backend.generate([prompt] * 4, plain)} == {"prose"}  # random text
    assert "prose" not in {g.finish_reason for g in backend.generate([prompt] * 4, prefixed)}


def test_a_multi_turn_rollout_with_the_tiny_model_records_every_sampled_turn(
    make_policy, tokenizer, issue_environment
):
    policy = make_policy()
    backend = TransformersBackend(policy, tokenizer)
    envs = [issue_environment(f"OPS-{i}", done_after=i) for i in (1, 2, 3)]
    settings = RolloutSettings(
        max_turns=4, sampling=SamplingSettings(max_new_tokens=6, temperature=1.0, seed=5)
    )
    episodes = run_episodes(backend, tokenizer, SYSTEM, envs, settings)

    assert [len(e.turns) for e in episodes] == [1, 2, 3]
    assert backend.stats.calls == 3 and backend.stats.sequences == 3 + 2 + 1
    for episode in episodes:
        for index, turn in enumerate(episode.turns):
            assert 0 < len(turn.completion_ids) == len(turn.logprobs) <= 6
            assert all(lp <= 0 for lp in turn.logprobs)
            assert turn.text == tokenizer.decode(turn.completion_ids, skip_special_tokens=True)
            if index:  # each prompt extends the previous turn's rendered conversation
                previous = episode.turns[index - 1]
                assert tokenizer.decode(turn.prompt_ids).find(previous.observation_text) > 0
        assert episode.reward == 0.0 and episode.done
    json.dumps([t.action.as_dict() for e in episodes for t in e.turns])  # actions are JSON-serialisable
