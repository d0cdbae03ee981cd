"""Evaluation: run a set of environments (a split of a suite) and report reward and success.

Greedy by default (temperature 0), so the figure is the policy's best guess; pass sampling
settings to measure the sampled policy instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from trainer.generation import GenerationBackend
from trainer.rollout import Environment, Episode, RolloutSettings, run_episodes


def summarise(episodes: Sequence[Episode]) -> dict:
    """`{"reward", "success", "episodes", "per_task": {task: {"reward", "success", "episodes"}}}`:
    means over all episodes and per task id."""
    per_task: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        per_task[episode.task_id].append(episode)

    def figures(group: Sequence[Episode]) -> dict:
        n = len(group)
        return {
            "reward": sum(e.reward for e in group) / n if n else 0.0,
            "success": sum(e.success for e in group) / n if n else 0.0,
            "episodes": n,
        }

    tasks = {task: figures(group) for task, group in sorted(per_task.items())}
    return {**figures(episodes), "per_task": tasks}


def evaluate(
    backend: GenerationBackend,
    tokenizer,
    system: str,
    environments: Sequence[tuple[str, Environment]],
    settings: RolloutSettings | None = None,
    greedy: bool = True,
    batch_size: int = 16,
) -> tuple[dict, list[Episode]]:
    """Run `(task id, environment)` pairs in batches of at most `batch_size`, as even as can be
    (20 pairs at 16 are two batches of 10, not 16 and a nearly serial 4); return (summary,
    episodes).

    `greedy` overrides the sampling temperature with 0; the summary is `summarise(episodes)`.
    """
    settings = settings or RolloutSettings()
    if greedy:
        settings = replace(settings, sampling=replace(settings.sampling, temperature=0.0))
    episodes: list[Episode] = []
    batches = -(-len(environments) // batch_size)
    size = -(-len(environments) // batches) if batches else 0
    for first in range(0, len(environments), size or 1):
        batch = environments[first : first + size]
        envs, tasks = [env for _task, env in batch], [task for task, _env in batch]
        episodes += run_episodes(backend, tokenizer, system, envs, settings, tasks)
    return summarise(episodes), episodes
