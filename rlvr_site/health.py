"""``/healthz``: is the database up, is the broker reachable, is a worker answering?

Public (monitors have no login) and cheap: each probe has a short timeout and the answer names
what failed, so an operator sees at once whether to restart PostgreSQL, Redis or a worker.
"""

import time

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from rlvr_site.celery import app

PING_TIMEOUT_S = 1.0


def _probe(check):
    started = time.monotonic()
    try:
        detail = check()
        result = {"ok": True, **detail}
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker():
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport.driver_type}


def _workers():
    replies = app.control.ping(timeout=PING_TIMEOUT_S)
    names = sorted(name for reply in replies for name in reply)
    if not names:
        raise RuntimeError(f"no worker answered a ping within {PING_TIMEOUT_S:g} s")
    return {"count": len(names), "names": names}


@login_not_required
@never_cache
@require_GET
def healthz(request):
    database = _probe(_database)
    broker = _probe(_broker)
    workers = _probe(_workers) if broker["ok"] else {"ok": False, "error": "broker unreachable"}
    if database["ok"] and broker["ok"] and workers["ok"]:
        status = "ok"
    elif database["ok"] and broker["ok"]:
        status = "degraded"  # the site works; launched experiments wait for a worker
    else:
        status = "down"
    body = {"status": status, "database": database, "broker": broker, "workers": workers}
    return JsonResponse(body, status=503 if status == "down" else 200)
