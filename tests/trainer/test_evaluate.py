import json

from trainer.evaluate import evaluate, summarise
from trainer.generation import Generation, GenerationStats, SamplingSettings
from trainer.rollout import Episode, RolloutSettings

from .conftest import SYSTEM


class AnswerBackend:
    """Always reads the issue first, then answers "Done"; records the settings it was called with."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []
        self.stats = GenerationStats()

    def generate(self, prompts, settings):
        self.calls.append((len(prompts), settings.temperature))
        out = []
        for prompt in prompts:
            text = self.tokenizer.decode(prompt)
            if "Status 200" in text:
                reply = '{"final": "Done"}'
            else:
                key = text.split("status of ")[-1].split("?")[0]
                reply = json.dumps({"method": "GET", "path": f"/rest/api/3/issue/{key}"})
            out.append(Generation([1], [-0.1], reply, "json"))
        return out


def test_summaries_average_per_task_and_overall():
    episodes = [
        Episode("a", "", reward=1.0, success=True),
        Episode("a", "", reward=0.0),
        Episode("b", "", reward=0.5),
    ]
    assert summarise(episodes) == {
        "reward": 0.5,
        "success": 1 / 3,
        "episodes": 3,
        "per_task": {
            "a": {"reward": 0.5, "success": 0.5, "episodes": 2},
            "b": {"reward": 0.5, "success": 0.0, "episodes": 1},
        },
    }


def test_evaluation_is_greedy_batched_and_reports_each_task(tokenizer, issue_environment):
    backend = AnswerBackend(tokenizer)
    envs = [("read", issue_environment(f"OPS-{i}")) for i in range(3)] + [
        ("wrong", issue_environment("WEB-1", status="In Progress"))
    ]
    settings = RolloutSettings(max_turns=3, sampling=SamplingSettings(temperature=1.0))
    summary, episodes = evaluate(backend, tokenizer, SYSTEM, envs, settings, batch_size=3)
    assert summary["per_task"] == {
        "read": {"reward": 1.0, "success": 1.0, "episodes": 3},
        "wrong": {"reward": 0.5, "success": 0.0, "episodes": 1},
    }
    assert summary["reward"] == 0.875 and summary["success"] == 0.75
    assert backend.calls == [(2, 0.0), (2, 0.0), (2, 0.0), (2, 0.0)]  # 4 at 3 a batch: 2 + 2, not 3 + 1
    assert settings.sampling.temperature == 1.0  # the caller's settings are left alone
    assert len(episodes) == 4


def test_sampled_evaluation_keeps_the_temperature(tokenizer, issue_environment):
    backend = AnswerBackend(tokenizer)
    settings = RolloutSettings(sampling=SamplingSettings(temperature=0.7))
    evaluate(backend, tokenizer, SYSTEM, [("read", issue_environment())], settings, greedy=False)
    assert {temperature for _n, temperature in backend.calls} == {0.7}
