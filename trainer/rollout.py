"""The multi-turn agent loop over a batch of environments.

An `Environment` is one episode of one task: `reset()` gives the instruction, `step(action)` runs
one parsed action (a format error included: the environment answers it with an explanatory
observation and its reward counts it) and says whether the episode is over, `result()` scores the
episode. The simulator-backed implementation lives on the Django side and is handed in.

`run_episodes` advances all environments together: each turn it renders every live episode's
prompt, samples all of them in one batched `GenerationBackend.generate` call, parses and steps.
Episodes finish at different turns; only live ones are generated for. Every turn keeps the exact
prompt ids, sampled ids and their log-probs, so the update trains on exactly what was sampled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainer.generation import GenerationBackend, SamplingSettings, TurnCache
from trainer.parsing import ParsedAction, parse_action
from trainer.prompts import OBSERVATION_TOKENS, Observation, build_messages, encode_prompt, render_observation

__all__ = [
    "Environment",
    "Episode",
    "EpisodeResult",
    "Observation",
    "ParsedAction",
    "RolloutSettings",
    "Turn",
    "format_error_observation",
    "run_episodes",
    "turn_prompt",
]


@dataclass
class EpisodeResult:
    """The verdict on a finished episode: reward in [0, 1], success, and the checks behind them."""

    reward: float
    success: bool
    details: dict[str, Any] = field(default_factory=dict)


class Environment(Protocol):
    """One episode of one task."""

    def reset(self) -> str:
        """Start the episode; return the instruction shown to the model."""
        ...

    def step(self, action: ParsedAction) -> tuple[Observation | None, bool]:
        """Apply one action (possibly a format error); return (observation, done)."""
        ...

    def result(self) -> EpisodeResult:
        """Score the episode (called once, after the last step)."""
        ...


def format_error_observation(action: ParsedAction) -> Observation:
    """The observation an environment may show for an unparseable action: no call, the message."""
    return Observation(status=None, body=action.error)


@dataclass
class Turn:
    """One model turn: what it read, what it sampled, what happened.

    `prompt_ids` (T_p ints) is the full rendered prompt; `completion_ids` and `logprobs` (T_c each)
    are the sampled tokens and their log-probs at the sampling temperature.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    text: str
    action: ParsedAction
    observation: Observation | None
    observation_text: str
    finish_reason: str
    seconds: float  # wall time of the batched generate call this turn was part of


@dataclass
class Episode:
    """A finished episode with its turns and result."""

    task_id: str
    instruction: str
    turns: list[Turn] = field(default_factory=list)
    reward: float = 0.0
    success: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    done: bool = False  # False when max_turns cut it short

    @property
    def generated_tokens(self) -> int:
        return sum(len(turn.completion_ids) for turn in self.turns)


@dataclass
class RolloutSettings:
    """Agent-loop limits and per-turn sampling."""

    max_turns: int = 8
    observation_tokens: int = OBSERVATION_TOKENS
    sampling: SamplingSettings = field(default_factory=SamplingSettings)


def turn_prompt(
    tokenizer, system: str, instruction: str, previous: Sequence[Turn], reply_prefix: str = ""
) -> list[int]:
    """Token ids of the prompt for the next turn after `previous` turns (T_p ints), ending with
    the tokens of `reply_prefix` (see `SamplingSettings.reply_prefix`).

    The one way a turn's prompt is rendered: the loop uses it, and a trainer that kept only the
    transcript (instruction, each turn's text and observation text) can rebuild exact prompt ids.
    """
    history = [(turn.text.strip(), turn.observation_text) for turn in previous]
    prompt = encode_prompt(tokenizer, build_messages(system, instruction, history))
    if reply_prefix:
        prompt += tokenizer.encode(reply_prefix, add_special_tokens=False)
    return prompt


def run_episodes(
    backend: GenerationBackend,
    tokenizer,
    system: str,
    environments: Sequence[Environment],
    settings: RolloutSettings,
    task_ids: Sequence[str] | None = None,
) -> list[Episode]:
    """Run N environments to the end, batching each turn's generation across the live ones.

    `system` is the system prompt (see `prompts.system_prompt`); `task_ids` labels the episodes
    (defaults to their index). Returns N `Episode`s in the order of `environments`.
    """
    ids = list(task_ids) if task_ids is not None else [str(i) for i in range(len(environments))]
    episodes = [
        Episode(task_id=task, instruction=env.reset()) for task, env in zip(ids, environments, strict=True)
    ]
    live = list(range(len(environments)))
    # A backend that can keeps each episode's KV cache between its turns (see TurnCache).
    turn_cache = TurnCache() if getattr(backend, "reuses_turns", False) else None
    for _turn in range(settings.max_turns):
        if not live:
            break
        prefix = settings.sampling.reply_prefix
        prompts = [
            turn_prompt(tokenizer, system, episodes[i].instruction, episodes[i].turns, prefix) for i in live
        ]
        started = time.perf_counter()
        if turn_cache is None:
            generations = backend.generate(prompts, settings.sampling)
        else:
            generations = backend.generate(prompts, settings.sampling, turn_cache=turn_cache, keys=live)
        seconds = time.perf_counter() - started
        still_live = []
        for i, prompt, generation in zip(live, prompts, generations, strict=True):
            text = prefix + generation.text  # the reply, its given start included
            action = parse_action(text)
            observation, done = environments[i].step(action)
            observation_text = (
                render_observation(observation, tokenizer, settings.observation_tokens) if observation else ""
            )
            episodes[i].turns.append(
                Turn(
                    prompt_ids=prompt,
                    completion_ids=generation.token_ids,
                    logprobs=generation.logprobs,
                    text=text,
                    action=action,
                    observation=observation,
                    observation_text=observation_text,
                    finish_reason=generation.finish_reason,
                    seconds=seconds,
                )
            )
            if done:
                episodes[i].done = True
                if turn_cache is not None:
                    turn_cache.entries.pop(i, None)
            else:
                still_live.append(i)
        live = still_live
    for episode, env in zip(episodes, environments, strict=True):
        result = env.result()
        episode.reward, episode.success, episode.details = result.reward, result.success, result.details
    return episodes
