"""Rollout throughput through Celery: episodes per minute with 1 and 2 rollout worker processes,
and the ratio, measured in the same run.

    python bench/rollouts.py                         # tiny-random, then smollm2-135m
    python bench/rollouts.py --models tiny-random    # one model
    python bench/rollouts.py --groups 8 --group-size 4 --real-groups 4

Each measurement starts a real worker (``celery worker -Q rollout -c N``, nothing on the train
queue, so only rollouts run), warms it up with one experiment of 2N groups (every process loads
the model), then launches a one-iteration GRPO experiment on the built-in ``atlassian-core`` suite
through experiments.services.start_experiment and times its rollout_group tasks, from dispatch to
the last episode stored. Its train step never runs: the experiment is cancelled afterwards. State
(SQLite database, filesystem broker) goes to a fresh folder unless DATABASE_URL and
CELERY_BROKER_URL say otherwise. torch uses one thread per process (RLVR_TORCH_THREADS), so N
processes use N cores; the load average before and after is printed, since on shared cores the
ratio says as much about the neighbours as about the workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RLVR_VAR_DIR", tempfile.mkdtemp(prefix="rlvr-bench-rollouts-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")
os.environ["RLVR_RECOVER_EVERY"] = "0"  # no stall detector: nothing here is lost

import django  # noqa: E402 - after the environment

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

SUITE = "atlassian-core"
TASKS = "read-status,read-priority,read-assignee,add-label"


def worker_env():
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    return env


def start_worker(processes: int, log: Path):
    command = [
        sys.executable, "-m", "celery", "-A", "rlvr_site", "worker", "-Q", "rollout",
        "-c", str(processes), "-n", f"bench{processes}@%h", "--without-gossip", "--without-mingle",
        "-l", "warning",
    ]  # fmt: skip
    out = log.open("w")
    return subprocess.Popen(command, cwd=REPO, env=worker_env(), stdout=out, stderr=subprocess.STDOUT)


def stop_worker(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch(owner, model: str, groups: int, group_size: int, turns: int, tokens: int, seed: int):
    from experiments.services import start_experiment

    overrides = {
        "iterations": 1,
        "tasks": TASKS,
        "tasks_per_iteration": groups,
        "group_size": group_size,
        "max_turns": turns,
        "max_new_tokens": tokens,
        "tool_docs": "used",
        "keep_worlds": "none",
        "seed": seed,
    }
    return start_experiment(owner, SUITE, model, "grpo", overrides, name=f"bench {model} seed {seed}")


def wait_for_episodes(experiment, expected: int, timeout: float) -> float:
    """Seconds until ``expected`` episodes of ``experiment`` are stored."""
    from experiments.models import Episode

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        experiment.refresh_from_db()
        if experiment.status == "failed":
            raise RuntimeError(f"experiment {experiment.pk} failed: {experiment.error}")
        if Episode.objects.filter(experiment=experiment).count() >= expected:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise TimeoutError(f"experiment {experiment.pk}: not {expected} episodes within {timeout} s")


def measure(owner, model: str, processes: int, args, seed: int) -> dict:
    from experiments.services import cancel_experiment
    from rlvr_site.celery import app

    groups = args.groups if model == "tiny-random" else args.real_groups
    log = Path(settings.VAR_DIR) / f"worker-{model}-{processes}.log"
    app.control.purge()
    worker = start_worker(processes, log)
    try:
        warm = launch(owner, model, 2 * processes, 2, 1, 4, seed + 1000)
        wait_for_episodes(warm, 2 * processes * 2, args.timeout)
        cancel_experiment(warm)
        timed = launch(owner, model, groups, args.group_size, args.turns, args.tokens, seed)
        episodes = groups * args.group_size
        seconds = wait_for_episodes(timed, episodes, args.timeout)
        cancel_experiment(timed)
    finally:
        stop_worker(worker)
    return {"model": model, "processes": processes, "episodes": episodes, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny-random,smollm2-135m")
    parser.add_argument("--groups", type=int, default=12, help="groups of the tiny-random runs")
    parser.add_argument("--real-groups", type=int, default=4, help="groups of the smollm2-135m runs")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per turn")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    from django.contrib.auth import get_user_model

    from experiments.builtin import load_builtin_suites

    call_command("migrate", verbosity=0)
    load_builtin_suites()
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    print(f"cpus {os.cpu_count()}, load average before {os.getloadavg()}")
    print(f"database {settings.DATABASES['default']['ENGINE']}, broker {settings.CELERY_BROKER_URL}")
    results = []
    for model in args.models.split(","):
        for processes in (1, 2):
            result = measure(owner, model, processes, args, seed=len(results))
            result["per_minute"] = 60 * result["episodes"] / result["seconds"]
            results.append(result)
            print(
                f"{model:14} {processes} process(es): {result['episodes']} episodes in "
                f"{result['seconds']:.1f} s = {result['per_minute']:.1f} episodes/min",
                flush=True,
            )
    print(f"load average after {os.getloadavg()}")
    for model in args.models.split(","):
        one, two = (r["per_minute"] for r in results if r["model"] == model)
        print(f"{model:14} 2 processes / 1 process: {two / one:.2f}x")


if __name__ == "__main__":
    main()
