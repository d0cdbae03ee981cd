"""Fixtures for the trainer tests: the tiny-random policy, its tokenizer, and a fake environment.

The trainer is Django-free; these tests only share the repository's conftest (which sets Django
settings up but touches no database here).
"""

import pytest
import torch

from trainer.models import LoraSettings, PolicyConfig, load_policy, load_tokenizer
from trainer.prompts import Observation
from trainer.rollout import EpisodeResult, format_error_observation

SYSTEM = 'You operate Jira. Reply with one JSON object: {"method", "path", "body"} or {"final": "..."}.'


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer("tiny-random")


@pytest.fixture
def make_policy(tokenizer):
    """A fresh tiny-random base model with a LoRA adapter; same base weights every call."""

    def make(rank=4, alpha=8, dropout=0.0):
        torch.manual_seed(0)
        policy, _ = load_policy(
            PolicyConfig("tiny-random", LoraSettings(rank=rank, alpha=alpha, dropout=dropout))
        )
        return policy

    return make


class IssueEnvironment:
    """A one-issue in-memory tracker: GET the issue, then answer its status with a final action.

    Reward: 0.5 for reading the issue, 0.5 more for the right final answer. `done_after` ends the
    episode after that many steps whatever the actions were (to make episodes end at different
    turns).
    """

    def __init__(self, key="OPS-1", status="Done", done_after=None):
        self.key, self.status, self.done_after = key, status, done_after
        self.actions = []

    def reset(self):
        self.actions = []
        return f"What is the status of {self.key}?"

    def step(self, action):
        self.actions.append(action)
        done = self.done_after is not None and len(self.actions) >= self.done_after
        if not action.ok:
            return format_error_observation(action), done
        if action.is_final:
            return None, True
        if action.method == "GET" and action.path == f"/rest/api/3/issue/{self.key}":
            return Observation(200, {"key": self.key, "fields": {"status": {"name": self.status}}}), done
        return Observation(404, {"errorMessages": ["Issue does not exist"], "errors": {}}), done

    def result(self):
        read = any(a.ok and a.method == "GET" for a in self.actions)
        answered = any(a.is_final and self.status.lower() in a.final.lower() for a in self.actions)
        reward = 0.5 * read + 0.5 * answered
        return EpisodeResult(
            reward=reward, success=reward == 1.0, details={"read": read, "answered": answered}
        )


@pytest.fixture
def issue_environment():
    return IssueEnvironment
