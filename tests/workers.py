"""A real Celery worker in a subprocess, on the test database and the configured broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent


def database_url_for_test_db():
    """The DATABASE_URL of the test database pytest-django created, for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise RuntimeError(f"no worker URL for database engine {db['ENGINE']}")


def worker_env():
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_test_db()
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["RLVR_VAR_DIR"] = str(settings.VAR_DIR)
    # Beat every second and call an iteration stalled after 10 s without a beat, so that the
    # stall detector (experiments.recovery) acts within a test's patience.
    env.setdefault("RLVR_HEARTBEAT_SECONDS", "1")
    env.setdefault("RLVR_STALL_SECONDS", "10")
    env.setdefault("RLVR_RECOVER_EVERY", "2")
    return env


def start_worker(name, queues="rollout,train", concurrency=2):
    command = [
        sys.executable, "-m", "celery", "-A", "rlvr_site", "worker",
        "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h",
        "--without-gossip", "--without-mingle", "-l", "info",
    ]  # fmt: skip
    log = open(Path(settings.VAR_DIR) / f"worker-{name}.log", "w")  # noqa: SIM115 - closed with the process
    # Its own process group, so that kill_worker can kill it with its pool processes, as a host dies.
    process = subprocess.Popen(
        command, cwd=REPO, env=worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_path = log.name
    return process


def wait_for_ping(name, timeout=60):
    from rlvr_site.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5)
        if any(worker.startswith(f"{name}@") for reply in replies for worker in reply):
            return
    raise TimeoutError(f"worker {name} did not answer a ping within {timeout} s")


def kill_worker(process):
    """SIGKILL the worker and its pool processes at once: nothing is acknowledged, requeued or
    cleaned up, as when its host dies."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_worker(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def celery_worker(transactional_db):
    """A worker consuming both queues, started after the test database exists.

    Tests using it must commit their data (transactional_db) for the worker to see it."""
    from rlvr_site.celery import app

    app.control.purge()  # leftovers of an earlier, interrupted run must not run here
    process = start_worker("test")
    try:
        wait_for_ping("test")
        yield process
    finally:
        stop_worker(process)
        if process.returncode not in (0, -signal.SIGTERM):
            print(Path(process.log_path).read_text()[-4000:])
