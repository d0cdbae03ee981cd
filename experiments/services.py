"""Functions that change state on behalf of a user, shared by the pages and the commands."""

from celery import chord

from experiments.tasks import rollout_probe, train_probe


def run_worker_check(rollouts=4, timeout=60):
    """Run a chord of ``rollouts`` probe tasks on the ``rollout`` queue followed by one on the
    ``train`` queue, through the configured broker and real workers; return the body's result.

    Raises celery.exceptions.TimeoutError when no worker finishes within ``timeout`` seconds.
    """
    result = chord(rollout_probe.s(index) for index in range(rollouts))(train_probe.s())
    return result.get(timeout=timeout, propagate=True)
