"""Server time of the dashboard's pages on a large recorded history: p50/p95 and queries per page.

    python bench/pages.py                         # SQLite by default: builds 100k episodes, then times
    python bench/pages.py --keep                  # keep the history database to reuse next run
    python bench/pages.py --requests 50 --json
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlvr python bench/pages.py --keep

Nothing touches the dashboard's data: the benchmark uses a database of its own (a SQLite file, or a
``pagesbench_<pid>`` database on the PostgreSQL server DATABASE_URL names; ``--db-name``,
``pagesbench`` by default, with ``--keep``), writes the history there with ``manage.py history``
(experiments.history: 100k training episodes of 5 steps over 4 experiments by default) and drops
it at the end unless ``--keep``. With ``--keep`` a later run finds the history already there and
only times the pages.

Each page is requested through Django's test Client (the whole request: middleware, session, view,
template) as a signed-in operator, a few warm-up requests first, then ``--requests`` timed ones;
the figures are server time, no network. Query counts are those of one request. The episodes,
replay and review pages (issue 9) are timed when their URLs exist, and skipped otherwise.
DEBUG is off (as in production): Django keeps no log of queries outside the counted request.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_MS = 200
# curves.json again with the cache cleared before each request: what the first viewer of a history
# (or the first poll after it grew) waits for.
COMPUTED = "curves.json, not cached"


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "pages-benchmark-only")
    import django

    django.setup()


class BenchDatabase:
    """A database of the benchmark's own on DATABASE_URL's server, created and migrated; dropped on
    exit unless ``keep`` (then reused, migrated, by the next run)."""

    def __init__(self, keep, name="pagesbench"):
        self.keep = keep
        self.kept_name = name

    def __enter__(self):
        from django.conf import settings
        from django.db import connection

        db = connection.settings_dict
        if connection.vendor == "sqlite":
            folder = (
                Path(settings.VAR_DIR) / "bench"
                if self.keep
                else Path(tempfile.mkdtemp(prefix="pagesbench-"))
            )
            folder.mkdir(parents=True, exist_ok=True)
            db["TEST"]["NAME"] = str(folder / f"{self.kept_name}.sqlite3")
        else:
            db["TEST"]["NAME"] = self.kept_name if self.keep else f"pagesbench_{os.getpid()}"
        self.old_name = db["NAME"]
        self.name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=self.keep
        )
        return self

    def __exit__(self, *exc):
        from django.db import connection

        connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=self.keep)


def ensure_history(episodes, experiments, steps):
    """Write the history unless the database already holds at least ``episodes`` train episodes."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from experiments.models import Episode, Step
    from experiments.roles import add_user_to_role

    users = get_user_model().objects
    user = users.filter(username="bench").first()
    if user is None:
        user = users.create_user("bench")  # force_login: no password
        add_user_to_role(user, "operators")
    have = Episode.objects.filter(split="train").count()
    built = None
    if have < episodes:
        started = time.perf_counter()
        call_command(
            "history",
            episodes=episodes - have,
            experiments=experiments,
            steps_per_episode=steps,
            owner="bench",
        )
        built = time.perf_counter() - started
        refresh_statistics()
    return user, {
        "episodes": Episode.objects.count(),
        "steps": Step.objects.count(),
        "built_seconds": built,
    }


def refresh_statistics():
    """What a live database's autovacuum would have done by now after a bulk load: fresh planner
    statistics, and on PostgreSQL a visibility map, without which no scan is index-only."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def pages(user):
    """[(label, url or None, why skipped)] of the pages timed."""
    from django.urls import NoReverseMatch, reverse

    from experiments.models import Episode, Experiment

    experiment = Experiment.objects.order_by("-current_iteration", "pk").first()
    iteration = experiment.iteration_set.order_by("-index").first()
    task, variant = iteration.groups[0]
    ids = ",".join(str(pk) for pk in Experiment.objects.order_by("pk").values_list("pk", flat=True)[:4])
    failed = Episode.objects.filter(experiment=experiment, success=False).order_by("-pk").first()
    out = [
        ("list", reverse("home"), None),
        ("experiment page", reverse("experiment", args=[experiment.pk]), None),
        ("curves.json", reverse("experiment-curves", args=[experiment.pk]), None),
        (COMPUTED, reverse("experiment-curves", args=[experiment.pk]), None),
        ("progress.json", reverse("experiment-progress", args=[experiment.pk]), None),
        (
            "group view",
            reverse("experiment-group", args=[experiment.pk, iteration.index, task, variant]),
            None,
        ),
        (f"compare ({ids.count(',') + 1} runs)", reverse("experiment-compare") + f"?ids={ids}", None),
    ]
    wanted = [
        ("episodes", "episodes", [], f"?experiment={experiment.pk}&sort=-reward"),
        (
            "episodes, filtered",
            "episodes",
            [],
            f"?experiment={experiment.pk}&iteration={iteration.index}&task={task}",
        ),
        ("episodes, free-text search", "episodes", [], f"?experiment={experiment.pk}&q=quick-win"),
        ("episode (replay)", "episode", [failed.pk], ""),
        ("episode step fragment", "episode-step", [failed.pk, 0], ""),
        ("review", "review", [], ""),
        ("review queue", "review-queue", [_a_review_queue(user, experiment)], ""),
    ]
    for label, name, args, query in wanted:
        try:
            out.append((label, reverse(name, args=args) + query, None))
        except NoReverseMatch:
            out.append((label, None, f"no URL named {name!r} yet"))
    return out


def _a_review_queue(user, experiment):
    """The pk of a review queue of 50 failed episodes of ``experiment`` assigned to ``user``
    (made once, through the same service as the page's "save as a queue")."""
    from experiments.models import ReviewQueue
    from experiments.review import build_queue

    queue = ReviewQueue.objects.filter(name="bench").first() or build_queue(
        name="bench",
        filters={"experiment": str(experiment.pk), "success": "0"},
        size=50,
        members=[user],
        created_by=user,
    )
    return queue.pk


def time_page(client, url, requests, warmup=3, before=lambda: None):
    """p50/p95 of ``requests`` GETs of ``url`` (``before()`` runs, untimed, before each) and the
    queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        before()
        response = client.get(url)
        if response.status_code != 200:
            return {"status": response.status_code}
    connection.queries_log.clear()  # a full log (it keeps 9,000) would count nothing
    before()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    count = len(queries)  # now: the captured slice is read from the live log, cleared per request
    times = []
    for _ in range(requests):
        before()
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "status": 200,
        "p50_ms": statistics.median(times),
        "p95_ms": times[max(0, round(0.95 * len(times)) - 1)],
        "queries": count,
        "requests": requests,
    }


def _database_name(connection):
    if connection.vendor == "postgresql":
        v = connection.pg_version
        return f"PostgreSQL {v // 10000}.{v % 10000}"
    return f"SQLite {connection.Database.sqlite_version}"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=100_000, help="training episodes in the history")
    parser.add_argument("--experiments", type=int, default=4)
    parser.add_argument("--steps-per-episode", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the history database for the next run")
    parser.add_argument(
        "--db-name", default="pagesbench", help="name of the kept database (file name on SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    _setup_django()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test Client's host, and no outgoing mail
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with BenchDatabase(args.keep, args.db_name):
        user, history = ensure_history(args.episodes, args.experiments, args.steps_per_episode)
        client = Client()
        client.force_login(user)
        out = {
            "database": _database_name(connection),
            "history": history,
            "target_p95_ms": TARGET_MS,
            "pages": {},
        }
        for label, url, skipped in pages(user):
            if url is None:
                out["pages"][label] = {"skipped": skipped}
                continue
            before = cache.clear if label == COMPUTED else lambda: None
            out["pages"][label] = {"url": url, **time_page(client, url, args.requests, before=before)}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print_report(out)


def print_report(out):
    history = out["history"]
    built = f", built in {history['built_seconds']:.0f} s" if history["built_seconds"] else ", reused"
    print(f"{out['database']}: {history['episodes']:,} episodes, {history['steps']:,} steps{built}")
    print(f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}  url")
    for label, row in out["pages"].items():
        if "skipped" in row:
            print(f"{label:<28} {'skipped: ' + row['skipped']}")
        elif row["status"] != 200:
            print(f"{label:<28} HTTP {row['status']}  {row['url']}")
        else:
            flag = "" if row["p95_ms"] < out["target_p95_ms"] else "  over target"
            figures = f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['queries']:>8}"
            print(f"{label:<28} {figures}  {row['url']}{flag}")


if __name__ == "__main__":
    main()
