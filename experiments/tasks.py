"""Celery tasks of the experiments app.

Names follow the routing rule of rlvr_site/celery.py: ``rollout_*`` run on the ``rollout``
queue, ``train_*`` on the ``train`` queue. Tasks take ids and plain values, never objects.
"""

import os
import socket

from celery import shared_task


@shared_task(bind=True)
def rollout_probe(self, index):
    """One leg of the worker self-check: proves a rollout worker picks up work."""
    return {"index": index, "worker": self.request.hostname or socket.gethostname(), "pid": os.getpid()}


@shared_task(bind=True)
def train_probe(self, results):
    """The self-check's chord body: proves a train worker runs after every rollout finished."""
    return {
        "rollouts": len(results),
        "indexes": sorted(result["index"] for result in results),
        "rollout_workers": sorted({result["worker"] for result in results}),
        "train_worker": self.request.hostname or socket.gethostname(),
    }
