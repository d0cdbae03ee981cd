"""The simulator's speed: in-process calls/s, SQL per call type, HTTP calls/s and fork time.

    python bench/simulator.py                    # on whatever DATABASE_URL says (SQLite by default)
    python bench/simulator.py --calls 1400 --json
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlvr python bench/simulator.py

Nothing touches the dashboard's data: the benchmark creates its own database (a temporary
SQLite file, or a ``simbench_<pid>`` database on the PostgreSQL server DATABASE_URL names),
loads the acme seed there, and drops it at the end.

What it measures, each against a baseline taken in the same run:

- in-process calls/s of a fixed mix (create, get, edit labels, transition, JQL search, comment,
  page create) through ``SimClient(wait=False)`` as a rollout's episode calls its world (a trace
  statement that is a call's whole transaction is not waited for: simulator.trace.
  UnansweredStatement), one world per repetition, median of the repetitions, and the CPU time a
  call costs the benchmark's own process (its Python and libpq, not the server); the floor is a
  loop of ``SELECT 1`` round trips and a loop of one-row write transactions, so the ratio says
  how many round trips / commits a call costs;
- with ``--in-flight N``, the same mix on N worlds at once in the one process, a thread and a
  connection each (one world's Python runs while another's call waits on the database);
- the SQL queries of each call type (CaptureQueriesContext, after the world's configuration is
  loaded: deterministic);
- HTTP calls/s of the same mix against a server started here (wsgiref, one thread, Basic auth),
  against a bare Django view on the same server;
- the time to fork the acme seed (median), against its query count.

With ``--analyzed``, every figure is taken after an ANALYZE of the database as it is once the
seed is loaded: the statistics a fresh server has once autovacuum has run (within a minute),
while the tables each world adds to are still small and its first worlds are planned against
them. A statement planned as for a small table (a sequential scan) then slows down with every
world until the next ANALYZE; without the flag the tables were never analyzed and the planner
assumes they are large.

DEBUG is off (as in production and in the workers): Django does not keep a log of queries.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

V3 = "/rest/api/3"
ADA = "712020:0a1b2c3d-0001-4e5f-8a9b-acme00000001"
# The mix, in the order one cycle runs it; every cycle creates its own issue and works on it.
MIX = ["create", "get", "edit_labels", "transition", "search", "comment", "page_create"]
SEARCH_JQL = "project = WEB AND statusCategory != Done ORDER BY priority DESC, updated DESC"


def _setup_django(db_name=None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "simulator-benchmark-only")
    import django
    from django.conf import settings

    if db_name:  # the server subprocess: the benchmark's database, not the configured one
        settings.DATABASES["default"]["NAME"] = db_name
    django.setup()


# --- The benchmark's own database -----------------------------------------------------------------


class ThrowAwayDatabase:
    """Creates and migrates a database of its own on DATABASE_URL's server; drops it on exit."""

    def __enter__(self):
        from django.db import connection

        db = connection.settings_dict
        self.vendor = connection.vendor
        if self.vendor == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="simbench-")
            db["TEST"]["NAME"] = str(Path(self.tmp) / "bench.sqlite3")
        else:
            db["TEST"]["NAME"] = f"simbench_{os.getpid()}"
        self.old_name = db["NAME"]
        self.name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        return self

    def __exit__(self, *exc):
        from django.db import connection

        connection.creation.destroy_test_db(self.old_name, verbosity=0)


# --- The mix --------------------------------------------------------------------------------------


class Mix:
    """The fixed calls of one cycle, on one world; ``call(kind)`` makes the next call of a kind."""

    def __init__(self, world, space_id, page_create=True):
        self.world = world
        self.space_id = space_id
        self.n = 0
        self.key = "OPS-1"
        self.kinds = [k for k in MIX if page_create or k != "page_create"]

    def request(self, kind):
        """(method, path, params, body) of the next call of ``kind``."""
        n = self.n
        if kind == "create":
            body = {
                "fields": {
                    "project": {"key": "OPS"},
                    "issuetype": {"name": "Task"},
                    "summary": f"Benchmark task {n}",
                    "labels": ["bench"],
                }
            }
            return "POST", f"{V3}/issue", None, body
        if kind == "get":
            return "GET", f"{V3}/issue/{self.key}", None, None
        if kind == "edit_labels":
            return "PUT", f"{V3}/issue/{self.key}", None, {"update": {"labels": [{"add": f"b{n}"}]}}
        if kind == "transition":
            return "POST", f"{V3}/issue/{self.key}/transitions", None, {"transition": {"id": "11"}}
        if kind == "search":
            params = {
                "jql": SEARCH_JQL,
                "maxResults": "10",
                "fields": "summary,status,assignee,priority,labels",
            }
            return "GET", f"{V3}/search/jql", params, None
        if kind == "comment":
            body = {"body": _adf(f"Looked at this, cycle {n}.")}
            return "POST", f"{V3}/issue/{self.key}/comment", None, body
        if kind == "page_create":
            body = {
                "spaceId": str(self.space_id),
                "status": "current",
                "title": f"Benchmark page {n}",
                "body": {"representation": "storage", "value": f"<p>Notes of cycle {n}.</p>"},
            }
            return "POST", "/wiki/api/v2/pages", None, body
        raise ValueError(kind)

    def seen(self, kind, status, body):
        if kind == "create" and status == 201:
            self.key = body["key"]
        if kind == self.kinds[-1]:
            self.n += 1


def _adf(text):
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def fresh_world(template):
    from simulator.models import Space, User

    world = template.fork()
    user = User.objects.get(world=world, account_id=ADA)
    space_id = Space.objects.filter(world=world, key="ENG").values_list("ext_id", flat=True).first()
    return world, user, space_id


def page_create_served():
    from simulator.routing import ApiError, get_router

    try:
        get_router().resolve("POST", "/wiki/api/v2/pages")
    except ApiError:
        return False
    return True


# --- In-process ---------------------------------------------------------------------------------


def in_process(template, calls, repeat, page_create):
    """calls/s of the mix (median of ``repeat`` fresh worlds), the median ms of each kind, and
    the CPU time a call costs this process (Python and libpq; not the server's), median of the
    repetitions: what one core spends on the client's side of a call."""
    rates, cpu, per_kind, statuses = [], [], {k: [] for k in MIX}, {}
    for _ in range(repeat):
        client, mix = _ready(template, page_create)
        started, cpu_started = time.perf_counter(), time.process_time()
        _work(client, mix, calls, per_kind, statuses)
        rates.append(calls / (time.perf_counter() - started))
        cpu.append((time.process_time() - cpu_started) / calls)
    return {
        "calls_per_s": statistics.median(rates),
        "runs": [round(r, 1) for r in rates],
        "client_cpu_ms_per_call": round(statistics.median(cpu) * 1000, 3),
        "ms_per_kind": {k: round(statistics.median(v) * 1000, 3) for k, v in per_kind.items() if v},
        "statuses": {k: sorted(v) for k, v in statuses.items()},
    }


def in_flight(template, calls, repeat, page_create, worlds):
    """calls/s of the mix with ``worlds`` worlds worked at once in this one process, each on a
    thread (and a database connection) of its own, so that one world's Python runs while another's
    call waits on the database: several episodes a worker, one call each in flight. Median of
    ``repeat``; every world makes ``calls`` calls."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    rates, statuses = [], {}

    def work(client_and_mix):
        try:
            _work(*client_and_mix, calls, {k: [] for k in MIX}, statuses)
        finally:
            connection.close()  # this thread's own

    for _ in range(repeat):
        ready = [_ready(template, page_create) for _ in range(worlds)]
        with ThreadPoolExecutor(worlds) as pool:
            started = time.perf_counter()
            list(pool.map(work, ready))  # raises what a thread raised
        rates.append(worlds * calls / (time.perf_counter() - started))
    return {
        "worlds": worlds,
        "calls_per_s": statistics.median(rates),
        "runs": [round(r, 1) for r in rates],
        "statuses": {k: sorted(v) for k, v in statuses.items()},
    }


def _ready(template, page_create):
    """(client, mix) on a fresh fork, its configuration loaded (once per world)."""
    from simulator.client import SimClient

    world, user, space_id = fresh_world(template)
    client = SimClient(world, user, wait=False)  # as a rollout's episode calls its own world
    client.get(f"{V3}/priority")
    return client, Mix(world, space_id, page_create)


def _work(client, mix, calls, per_kind, statuses):
    """``calls`` calls of the mix, each call's seconds into ``per_kind`` and status into
    ``statuses``."""
    for i in range(calls):
        kind = mix.kinds[i % len(mix.kinds)]
        method, path, params, body = mix.request(kind)
        t0 = time.perf_counter()
        r = client.request(method, path, params=params, json=body)
        per_kind[kind].append(time.perf_counter() - t0)
        statuses.setdefault(kind, set()).add(r.status_code)
        mix.seen(kind, r.status_code, r.json() if r.text else None)


def without_trace(template, calls, repeat, page_create):
    """The mix again with the trace statement replaced by nothing: no call or change rows, and
    none of the writes held for that statement (so most calls write nothing). Not a simulator
    anyone could use; the ceiling that trimming the trace could ever reach on this machine."""
    from unittest import mock

    from django.db import connection

    def no_trace(world, call, changes, held=(), reads=None, wait=True):
        if reads is not None:
            reads.close()
            if reads.began:  # what the call wrote before its trace (a create) is still kept
                reads.began = False
                with connection.cursor() as cursor:
                    cursor.execute("COMMIT")

    with mock.patch("simulator.routing.write_call", no_trace):
        return in_process(template, calls, repeat, page_create)


def queries_per_kind(template, page_create, show_sql=False):
    """The SQL of each call type in a world whose configuration is loaded, on a connection that
    has made each call type once (deterministic)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from simulator.client import SimClient

    # One cycle first in a world of its own: on PostgreSQL the hot statements are prepared once per
    # connection (simulator.prepared), which a worker pays once, not once per call.
    world, user, space_id = fresh_world(template)
    warm = SimClient(world, user)
    warm.get(f"{V3}/priority")
    mix = Mix(world, space_id, page_create)
    for kind in mix.kinds:
        method, path, params, body = mix.request(kind)
        r = warm.request(method, path, params=params, json=body)
        mix.seen(kind, r.status_code, r.json() if r.text else None)
    world, user, space_id = fresh_world(template)
    client = SimClient(world, user)
    with CaptureQueriesContext(connection) as first:
        client.get(f"{V3}/priority")
    mix = Mix(world, space_id, page_create)
    out = {"first_call_of_a_world": len(first)}
    for kind in mix.kinds:
        method, path, params, body = mix.request(kind)
        with CaptureQueriesContext(connection) as ctx:
            r = client.request(method, path, params=params, json=body)
        mix.seen(kind, r.status_code, r.json() if r.text else None)
        out[kind] = len(ctx)
        if show_sql:
            print(f"-- {kind}: {method} {path} -> {r.status_code}", file=sys.stderr)
            for q in ctx.captured_queries:
                print("   ", q["sql"][:300], file=sys.stderr)
    return out


def floor(loops):
    """Round trips/s of ``SELECT 1`` and write transactions/s (one UPDATE + commit each)."""
    from django.db import connection, transaction

    from simulator.models import World

    world = World.objects.filter(is_template=False).first()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(loops):
            cursor.execute("SELECT 1")
            cursor.fetchone()
        select = loops / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(loops):
        with transaction.atomic():
            World.objects.filter(pk=world.pk).update(outcome="")
    commit = loops / (time.perf_counter() - started)
    return {"select1_per_s": select, "write_commits_per_s": commit}


def fork_times(template, count):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    template.fork()  # the template's rows, read once per process
    times = []
    for _ in range(count):
        started = time.perf_counter()
        template.fork()
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as ctx:
        template.fork()
    return {"median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000, "queries": len(ctx)}


# --- HTTP -----------------------------------------------------------------------------------------


def serve(port, db_name):
    """The server process: the site's WSGI application on wsgiref, quiet, one thread."""
    _setup_django(db_name)
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse
    from django.urls import clear_url_caches, path

    from rlvr_site import urls

    def ping(request):
        return HttpResponse(b"{}", content_type="application/json")

    ping.login_required = False  # LoginRequiredMiddleware lets it through
    urls.urlpatterns.append(path("simbench-ping/", ping))
    clear_url_caches()

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", port, get_wsgi_application(), handler_class=Quiet)
    server.serve_forever()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def over_http(template, db_name, calls, page_create):
    world, user, space_id = fresh_world(template)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--db-name", db_name],
        stdout=subprocess.DEVNULL,
        env=dict(os.environ, DEBUG="0"),
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        auth = "Basic " + base64.b64encode(f"{user.email}:{user.api_token}".encode()).decode()
        prefix = f"/sim/{world.slug}"

        def send(method, path, params=None, body=None):
            from urllib.parse import urlencode

            url = path + ("?" + urlencode(params) if params else "")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Authorization": auth, "Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            return resp.status, (json.loads(payload) if payload else None)

        send("GET", prefix + f"{V3}/priority")
        for _ in range(20):
            send("GET", "/simbench-ping/")
        started = time.perf_counter()
        for _ in range(calls):
            send("GET", "/simbench-ping/")
        ping_rate = calls / (time.perf_counter() - started)

        mix = Mix(world, space_id, page_create)
        statuses = {}
        started = time.perf_counter()
        for i in range(calls):
            kind = mix.kinds[i % len(mix.kinds)]
            method, path, params, body = mix.request(kind)
            status, payload = send(method, prefix + path, params, body)
            statuses.setdefault(kind, set()).add(status)
            mix.seen(kind, status, payload)
        rate = calls / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(10)
    return {
        "calls_per_s": rate,
        "bare_view_per_s": ping_rate,
        "statuses": {k: sorted(v) for k, v in statuses.items()},
    }


# --- Report ---------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=700, help="in-process calls per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="in-process repetitions (fresh world each)")
    parser.add_argument("--http-calls", type=int, default=210, help="HTTP calls (0 to skip)")
    parser.add_argument("--forks", type=int, default=15, help="forks timed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--without-trace", action="store_true", help="also the mix without the trace statement (a ceiling)"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=0,
        metavar="N",
        help="also the mix on N worlds at once, a thread each",
    )
    parser.add_argument(
        "--analyzed",
        action="store_true",
        help="ANALYZE the database once the seed is loaded, as autovacuum does on a fresh server",
    )
    parser.add_argument("--show-sql", action="store_true", help="print each call type's SQL to stderr")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db-name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db_name)
        return

    _setup_django()
    from django.db import connection

    # A killed benchmark still drops its database (SystemExit unwinds through the with block).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ThrowAwayDatabase() as db:
        from simulator.seeding import load_seed

        template = load_seed("acme")
        if args.analyzed:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        page_create = page_create_served()
        out = {
            "database": _database_name(connection),
            "analyzed": args.analyzed,
            "mix": [k for k in MIX if page_create or k != "page_create"],
            "page_create_served": page_create,
        }
        out["fork"] = fork_times(template, args.forks)
        out["queries_per_call"] = queries_per_kind(template, page_create, args.show_sql)
        out["in_process"] = in_process(template, args.calls, args.repeat, page_create)
        if args.without_trace:
            out["in_process_without_trace"] = without_trace(template, args.calls, args.repeat, page_create)
        if args.in_flight:
            out["in_flight"] = in_flight(template, args.calls, args.repeat, page_create, args.in_flight)
        out["floor"] = floor(max(args.calls, 500))
        if args.http_calls:
            out["http"] = over_http(template, db.name, args.http_calls, page_create)
        rate = out["in_process"]["calls_per_s"]
        out["ratios"] = {
            "select1_round_trips_per_call": out["floor"]["select1_per_s"] / rate,
            "write_commits_per_call": out["floor"]["write_commits_per_s"] / rate,
        }
        if "http" in out:
            out["ratios"]["http_vs_in_process"] = out["http"]["calls_per_s"] / rate
            out["ratios"]["http_vs_bare_view"] = out["http"]["calls_per_s"] / out["http"]["bare_view_per_s"]
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print_report(out)


def _database_name(connection):
    if connection.vendor == "postgresql":
        v = connection.pg_version
        return f"PostgreSQL {v // 10000}.{v % 10000}"
    return f"SQLite {connection.Database.sqlite_version}"


def print_report(out):
    q, ip, fl, fork = out["queries_per_call"], out["in_process"], out["floor"], out["fork"]
    print(f"database: {out['database']}" + (", analyzed once the seed was loaded" if out["analyzed"] else ""))
    if not out["page_create_served"]:
        print("page create: no Confluence v2 route served yet, left out of the mix")
    fork_ms = f"{fork['median_ms']:.1f} ms median (min {fork['min_ms']:.1f})"
    print(f"\nfork of acme: {fork_ms}, {fork['queries']} queries")
    print("\nSQL queries per call (configuration loaded):")
    for kind, n in q.items():
        ms = ip["ms_per_kind"].get(kind)
        print(f"  {kind:<22} {n:>3}" + (f"   {ms:7.2f} ms median" if ms is not None else ""))
    print(f"\nin-process mix: {ip['calls_per_s']:.0f} calls/s (runs {ip['runs']})")
    print(f"  client CPU: {ip['client_cpu_ms_per_call']:.2f} ms a call (this process; the server's apart)")
    if "in_process_without_trace" in out:
        bare = out["in_process_without_trace"]
        print(f"  without the trace statement (a ceiling): {bare['calls_per_s']:.0f} calls/s ", end="")
        print(f"(runs {bare['runs']})")
    if "in_flight" in out:
        many = out["in_flight"]
        print(f"  {many['worlds']} worlds at once, a thread each: {many['calls_per_s']:.0f} calls/s ", end="")
        print(f"(runs {many['runs']})")
    print(f"  floor: SELECT 1 {fl['select1_per_s']:.0f}/s, ", end="")
    print(f"one-row write transaction {fl['write_commits_per_s']:.0f}/s")
    r = out["ratios"]
    print(f"  a call costs {r['select1_round_trips_per_call']:.1f} SELECT-1 round trips, ", end="")
    print(f"{r['write_commits_per_call']:.2f} write transactions")
    if "http" in out:
        h = out["http"]
        print(f"\nHTTP mix: {h['calls_per_s']:.0f} calls/s; bare Django view {h['bare_view_per_s']:.0f}/s")
        print(f"  HTTP/in-process {r['http_vs_in_process']:.2f}, ", end="")
        print(f"HTTP mix/bare view {r['http_vs_bare_view']:.2f}")
    bad = {k: v for k, v in ip["statuses"].items() if any(s >= 400 for s in v)}
    if bad:
        print(f"\nWARNING: error statuses in the mix: {bad}")


if __name__ == "__main__":
    main()
