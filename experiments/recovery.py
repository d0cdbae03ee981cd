"""Running experiments carry on after their messages were lost: heartbeats and a stall detector.

At-least-once delivery (rlvr_site/celery.py) covers a worker *process* that dies: its worker
requeues the task. It does not cover a whole worker that dies (a host lost, the main process
killed): the messages it had taken are lost on the filesystem transport, and on Redis they come
back only after the transport's visibility timeout (an hour by default). An iteration whose
rollout or train message was lost would wait forever for its chord.

So every task of an iteration beats while it runs (``heartbeat``: ``Iteration.heartbeat_at``
every ``RLVR_HEARTBEAT_SECONDS``), and ``recover_stalled`` finds the running experiments whose
current iteration has neither beaten nor been dispatched for ``RLVR_STALL_SECONDS`` while no
message waits in the queues (an iteration waiting behind other work is not stalled), and
dispatches that iteration again (experiments.services.redispatch_iteration). Dispatching again
is harmless: a stored group is not sampled again, a group finished twice is stored once, a saved
checkpoint is not trained again. One process wins each recovery (a conditional update of
``Iteration.redispatched_at``), so every worker may run the detector: each worker runs it when it
starts and every ``RLVR_RECOVER_EVERY`` seconds in a thread of its main process (0 turns that
off); ``manage.py experiment recover`` runs it once.
"""

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings

log = logging.getLogger(__name__)

STATES = ("rolling", "training", "evaluating")  # an iteration under way


def heartbeat_seconds():
    return settings.RLVR_HEARTBEAT_SECONDS


def stall_seconds():
    return settings.RLVR_STALL_SECONDS


def recover_every_seconds():
    return settings.RLVR_RECOVER_EVERY


def beat(iteration_pk):
    """Mark the iteration alive now."""
    from django.utils import timezone

    from experiments.models import Iteration

    Iteration.objects.filter(pk=iteration_pk).update(heartbeat_at=timezone.now())


@contextmanager
def heartbeat(iteration_pk, every=None):
    """Beat once now and then every ``every`` seconds from a thread while the block runs."""
    from django.db import DatabaseError, connection

    every = heartbeat_seconds() if every is None else every
    stop = threading.Event()

    def run():
        try:
            while not stop.wait(every):
                try:
                    beat(iteration_pk)
                except DatabaseError as error:  # a busy database: the next beat may pass
                    log.warning("heartbeat of iteration %s failed: %s", iteration_pk, error)
        finally:
            connection.close()  # this thread's own connection

    beat(iteration_pk)
    thread = threading.Thread(target=run, name=f"heartbeat-{iteration_pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def queued_messages(queues=("rollout", "train")):
    """Messages waiting in the broker's queues (not those a worker holds)."""
    from rlvr_site.celery import app

    waiting = 0
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            try:
                waiting += channel.queue_declare(queue=queue, passive=True).message_count
            except connection.channel_errors:  # Redis: an empty queue does not exist
                channel = connection.channel()
    return waiting


def stalled_iterations(stalled_after=None):
    """The current iterations of queued and running experiments with no beat and no dispatch for
    ``stalled_after`` seconds (default RLVR_STALL_SECONDS)."""
    from django.db.models import F
    from django.db.models.functions import Coalesce, Greatest
    from django.utils import timezone

    from experiments.models import Iteration

    stalled_after = stall_seconds() if stalled_after is None else stalled_after
    cutoff = timezone.now() - timedelta(seconds=stalled_after)
    last = Greatest(
        Coalesce("heartbeat_at", "started_at"), Coalesce("redispatched_at", "started_at"), "started_at"
    )
    return (
        Iteration.objects.filter(
            experiment__status__in=("queued", "running"),
            index=F("experiment__current_iteration"),
            state__in=STATES,
        )
        .alias(last=last)
        .filter(last__lt=cutoff)
        .select_related("experiment", "experiment__suite")
    )


def recover_stalled(stalled_after=None, *, check_queues=True):
    """Dispatch every stalled iteration again (see the module's docstring); returns one
    ``{"experiment", "iteration", "state"}`` per iteration dispatched again."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from experiments.models import Iteration
    from experiments.services import redispatch_iteration

    stalled = list(stalled_iterations(stalled_after))
    if not stalled or (check_queues and queued_messages()):
        return []
    recovered = []
    for iteration in stalled:
        state = iteration.state
        with transaction.atomic():
            won = Iteration.objects.filter(
                pk=iteration.pk, redispatched_at=iteration.redispatched_at, state=iteration.state
            ).update(redispatched_at=timezone.now(), redispatches=F("redispatches") + 1)
            if not won:  # another worker's detector got there first
                continue
            if state == "training":  # its trainer is gone: train again
                Iteration.objects.filter(pk=iteration.pk).update(state="rolling")
            iteration.refresh_from_db()
            redispatch_iteration(iteration.experiment, iteration)
        ids = {"experiment": iteration.experiment_id, "iteration": iteration.index, "state": state}
        log.warning("stalled, dispatched again: %s", ids)
        recovered.append(ids)
    return recovered


def start_detector(every=None):
    """Run ``recover_stalled`` now and every ``every`` seconds (default RLVR_RECOVER_EVERY; 0:
    never) in a daemon thread; returns the thread, or None when turned off."""
    every = recover_every_seconds() if every is None else every
    if every <= 0:
        return None

    def run():
        from django.db import close_old_connections, connection

        while True:
            try:
                close_old_connections()
                recover_stalled()
            except Exception:  # the detector must outlive a database or broker hiccup
                log.exception("the stall detector failed; it tries again in %s s", every)
            finally:
                connection.close()
            threading.Event().wait(every)

    thread = threading.Thread(target=run, name="stall-detector", daemon=True)
    thread.start()
    return thread
