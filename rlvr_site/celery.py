"""The Celery application: two queues, routed by task name, with at-least-once delivery.

Rollouts (queue ``rollout``) scale out on many CPU/GPU hosts; the train step (queue
``train``) runs where the GPU is. Tasks are named ``<app>.tasks.rollout_*`` or
``<app>.tasks.train_*`` and the routes below follow the name, so a new task lands on the right
queue without touching this file.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")

app = Celery("rlvr_site")
# Broker URL, its transport options and the result backend come from settings (environment).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Each queue has its own exchange and routing key: a queue declared without them would be
    # bound to the default exchange and receive the other queue's messages too.
    task_queues=(
        Queue("rollout", Exchange("rollout", type="direct"), routing_key="rollout"),
        Queue("train", Exchange("train", type="direct"), routing_key="train"),
    ),
    task_default_queue="rollout",
    task_default_exchange="rollout",
    task_default_routing_key="rollout",
    task_routes={
        "*.rollout_*": {"queue": "rollout"},
        "*.train_*": {"queue": "train"},
    },
    # A task is acknowledged when it finishes, not when it starts, and a task whose worker
    # process died is requeued: work is never lost, so every task must be idempotent.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # One message at a time per process: tasks are long and a prefetched one would wait
    # behind the current one instead of going to an idle worker.
    worker_prefetch_multiplier=1,
    task_track_started=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
