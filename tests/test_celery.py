"""Celery end to end: a real worker process, the configured broker, results in the database."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from experiments.services import run_worker_check
from rlvr_site.celery import app


def test_tasks_are_routed_to_their_queue_by_name():
    router = app.amqp.router
    for task, queue in [
        ("experiments.tasks.rollout_probe", "rollout"),
        ("experiments.tasks.train_probe", "train"),
    ]:
        route = router.route({}, task)["queue"]
        assert route.name == queue
        # its own exchange and key, so no other queue receives its messages
        assert route.exchange.name == queue
        assert route.routing_key == queue


def test_delivery_is_at_least_once_one_message_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.result_backend == "django-db"


def test_a_chord_runs_end_to_end_on_a_real_worker(celery_worker):
    result = run_worker_check(rollouts=5, timeout=90)
    assert result["rollouts"] == 5
    assert result["indexes"] == [0, 1, 2, 3, 4]
    assert all(name.startswith("test@") for name in result["rollout_workers"])
    assert result["train_worker"].startswith("test@")


def test_rollout_and_train_tasks_reach_the_workers_of_their_own_queue(transactional_db):
    from tests.workers import start_worker, stop_worker, wait_for_ping

    app.control.purge()
    rollout, train = start_worker("roll", queues="rollout", concurrency=1), None
    try:
        train = start_worker("train", queues="train", concurrency=1)
        wait_for_ping("roll")
        wait_for_ping("train")
        result = run_worker_check(rollouts=3, timeout=90)
    finally:
        stop_worker(rollout)
        if train:
            stop_worker(train)
    assert [name.split("@")[0] for name in result["rollout_workers"]] == ["roll"]
    assert result["train_worker"].startswith("train@")


def test_celerycheck_reports_the_chord_as_json(celery_worker):
    out = io.StringIO()
    call_command("celerycheck", "--json", "--rollouts", "2", stdout=out)
    assert json.loads(out.getvalue())["indexes"] == [0, 1]


def test_healthz_reports_the_worker_up(celery_worker, client):
    body = client.get(reverse("healthz")).json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["workers"]["count"] >= 1
    assert any(name.startswith("test@") for name in body["workers"]["names"])


@pytest.mark.django_db
def test_healthz_is_public_and_says_degraded_when_no_worker_answers(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["workers"]["ok"] is False
    assert "no worker answered" in body["workers"]["error"]
    assert body["status"] == "degraded"
