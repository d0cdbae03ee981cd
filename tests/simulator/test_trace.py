"""The trace and the change log, determinism across forks, and the SQL each call costs."""

import importlib
import json

import pytest
from django.db import DatabaseError, connection

from simulator.client import SimClient
from simulator.models import ApiCall, Change, User, World
from tests.simulator.conftest import ADA

V3 = "/rest/api/3"
SCRIPT = [
    (
        "POST",
        f"{V3}/issue",
        {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Bug"}, "summary": "x"}},
    ),
    ("PUT", f"{V3}/issue/OPS-21", {"update": {"labels": [{"add": "triage"}]}}),
    ("POST", f"{V3}/issue/OPS-21/transitions", {"transition": {"id": "11"}}),
    ("POST", f"{V3}/issue/OPS-21/comment", {"body": {"type": "doc", "version": 1, "content": []}}),
    ("GET", f"{V3}/issue/OPS-21", None),
    ("GET", f"{V3}/search/jql", None),
    ("GET", f"{V3}/issue/OPS-999", None),
]


def play(world):
    client = SimClient(world, User.objects.get(world=world, account_id=ADA))
    out = []
    for method, path, body in SCRIPT:
        params = (
            {"jql": "updated >= -1d ORDER BY updated DESC", "fields": "*all"} if "search" in path else None
        )
        r = client.request(method, path, params=params, json=body)
        out.append((r.status_code, r.text.replace(world.slug, "WORLD")))
    return out


def test_the_same_calls_on_two_forks_give_identical_responses(acme_template):
    a, b = acme_template.fork(), acme_template.fork()
    assert play(a) == play(b)
    assert [json.loads(t) if t else None for _, t in play(a)][-3]  # and the world moved on


def test_every_call_is_traced_with_its_status_and_operation(jira):
    jira.put(f"{V3}/issue/WEB-7", json={"fields": {"summary": "Renamed"}})
    jira.get(f"{V3}/issue/WEB-999")
    calls = list(ApiCall.objects.filter(world=jira.world))
    assert [(c.seq, c.method, c.status, c.operation) for c in calls] == [
        (1, "PUT", 204, "editIssue"),
        (2, "GET", 404, "getIssue"),
    ]
    assert calls[0].body == {"fields": {"summary": "Renamed"}}
    assert calls[1].response["errorMessages"]
    assert calls[1].at > calls[0].at


def test_changes_record_field_level_before_and_after(jira):
    jira.put(
        f"{V3}/issue/WEB-7", json={"fields": {"summary": "Renamed"}, "update": {"labels": [{"add": "x"}]}}
    )
    jira.post(f"{V3}/issue/WEB-7/transitions", json={"transition": {"id": "21"}})
    changes = [
        (c.call.seq, c.object_ref, c.field, c.before, c.after)
        for c in Change.objects.filter(world=jira.world)
    ]
    assert (
        1,
        "WEB-7",
        "summary",
        "Cart total ignores discount codes after page reload",
        "Renamed",
    ) in changes
    assert (1, "WEB-7", "labels", ["checkout", "regression"], ["checkout", "regression", "x"]) in changes
    assert (2, "WEB-7", "status", "To Do", "In Progress") in changes


def test_a_refused_call_records_no_change(jira):
    jira.post(f"{V3}/issue/MOB-4/transitions", json={"transition": {"id": "31"}})
    assert not Change.objects.filter(world=jira.world).exists()


def overhead(changes):
    """What every call adds to its handler's SQL: the trace (one statement on PostgreSQL; on
    SQLite the world's counters, the call and, when it changed something, its changes) and, inside
    a test's transaction, the savepoint that stands in for the call's transaction and its release."""
    trace = 1 if connection.vendor == "postgresql" else (3 if changes else 2)
    return trace + 2


@pytest.mark.parametrize(
    "method,path,params,body,budget,changes",
    [
        # issue, its list fields (one query), its sprints, its comments
        ("GET", f"{V3}/issue/WEB-2", {"fields": "*all"}, None, 4, False),
        # the issues, their list fields, sprints, comments (the JQL's names come from memory)
        (
            "GET",
            f"{V3}/search/jql",
            {"jql": "project = WEB", "fields": "*all", "maxResults": 50},
            None,
            4,
            False,
        ),
        # issue, its labels, the new label, the issue
        ("PUT", f"{V3}/issue/WEB-7", None, {"update": {"labels": [{"add": "x"}]}}, 4, True),
        # issue, the issue
        ("POST", f"{V3}/issue/WEB-7/transitions", None, {"transition": {"id": "21"}}, 2, True),
        # the project's issue counter, the issue
        (
            "POST",
            f"{V3}/issue",
            None,
            {"fields": {"project": {"key": "WEB"}, "issuetype": {"id": "10011"}, "summary": "s"}},
            2,
            True,
        ),
        # issue, the comment, the updated time
        (
            "POST",
            f"{V3}/issue/WEB-7/comment",
            None,
            {"body": {"type": "doc", "version": 1, "content": []}},
            3,
            True,
        ),
        # the world's configuration is in memory
        ("GET", f"{V3}/priority", None, None, 0, False),
    ],
)
def test_calls_cost_a_small_fixed_number_of_queries(
    jira, django_assert_max_num_queries, method, path, params, body, budget, changes
):
    with django_assert_max_num_queries(budget + overhead(changes)):
        r = jira.request(method, path, params=params, json=body)
    assert r.status_code < 300, r.json()


def test_a_fresh_fork_answers_its_first_call_without_reading_its_configuration(
    acme_template, django_assert_max_num_queries
):
    world = acme_template.fork()
    client = SimClient(world, User.objects.get(world=world, account_id=ADA))
    with django_assert_max_num_queries(overhead(False)):
        assert client.get(f"{V3}/project/WEB/statuses").status_code == 200


def test_the_world_row_keeps_step_with_the_trace(jira):
    jira.post(
        f"{V3}/issue",
        json={"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "x"}},
    )
    jira.get(f"{V3}/issue/OPS-999")
    fresh = World.objects.get(pk=jira.world.pk)
    assert (fresh.ticks, fresh.next_ext_id) == (jira.world.ticks, jira.world.next_ext_id)
    assert fresh.ticks == ApiCall.objects.filter(world=fresh).order_by("-seq").first().seq


# Deleting a world takes its trace with it (delete_worlds, table by table: of the trace's foreign
# keys only the call's world is a constraint in the database, simulator.models).


def _trace_rows(world_id):
    return (
        ApiCall.objects.filter(world_id=world_id).count() + Change.objects.filter(world_id=world_id).count()
    )


def test_deleting_worlds_deletes_their_trace(acme_template):
    # Worlds are deleted by delete_worlds (simworld delete / prune, episodes' clean-up), table by
    # table; the ORM's per-row cascade is refused by the PROTECT keys between a world's rows.
    from simulator.forking import delete_worlds

    kept, gone, also_gone = acme_template.fork(), acme_template.fork(), acme_template.fork()
    for world in (kept, gone, also_gone):
        play(world)
        assert _trace_rows(world.pk) > len(SCRIPT)
    delete_worlds(World.objects.filter(pk__in=[gone.pk, also_gone.pk]))
    assert [_trace_rows(gone.pk), _trace_rows(also_gone.pk)] == [0, 0]
    assert _trace_rows(kept.pk) > len(SCRIPT)


@pytest.mark.django_db(transaction=True)  # the constraint is checked when the call commits
@pytest.mark.parametrize("wait", [True, False])
def test_a_call_on_a_deleted_world_leaves_no_trace(wait):
    # The call's world is the trace's one foreign key kept as a constraint: a call that comes in
    # after its world was deleted fails, and writes neither a call nor changes for the gone world.
    from simulator.forking import delete_worlds
    from simulator.seeding import load_seed
    from simulator.trace import finish_unanswered

    world = load_seed("acme").fork()
    client = SimClient(world, User.objects.get(world=world, account_id=ADA), wait=wait)
    client.get(f"{V3}/issue/OPS-1")
    delete_worlds(World.objects.filter(pk=world.pk))
    with pytest.raises(DatabaseError):  # IntegrityError, or TraceStatementFailed from the next statement
        client.get(f"{V3}/issue/OPS-1")  # a read: its trace is all it writes
        finish_unanswered()
    assert _trace_rows(world.pk) == 0


def test_the_trace_keeps_the_values_its_fields_would_write(ada):
    # simulator.trace passes str, int and float values as they are where the field would.
    from simulator import trace

    fields = trace._fields(ApiCall, trace.CALL_FIELDS)
    call = {
        "world": ada.world_id,
        "seq": 3,
        "door": "client",
        "user": None,
        "method": "GET",
        "path": "/rest/api/3/myself",
        "query": {"a": "1"},
        "body": None,
        "status": 200,
        "response": {"accountId": ada.account_id},
        "operation": "getCurrentUser",
        "duration_ms": 0.125,
        "at": ada.world.now(),
    }
    values = [call[name] for name in trace.CALL_FIELDS]
    kept = trace._prep(fields, values, connection)
    adapted = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
    for field, mine, theirs in zip(fields, kept, adapted, strict=True):
        json_text = field.get_internal_type() == "JSONField" and mine is not None
        if json_text and connection.vendor == "postgresql":
            # The JSON text as a str where Django passes psycopg2's Json adapter: the same literal
            # once the trace's placeholder (%s::jsonb) takes it.
            with connection.cursor() as cursor:
                assert cursor.mogrify(trace._placeholder(field), [mine]) == cursor.mogrify("%s", [theirs])
            continue
        assert type(mine) is type(theirs), field.name
        assert mine == theirs, field.name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
def test_the_trace_json_columns_compress_with_lz4_where_the_server_has_it(db):
    # A response over 2 kB (an issue read, a search page) is compressed on every call: pglz cost
    # a large part of the trace statement's server time (migration 0003).
    migration = importlib.import_module("simulator.migrations.0003_trace_tables_lean")
    with connection.cursor() as cursor:
        if not migration.has_lz4(cursor):
            pytest.skip("this PostgreSQL server was built without lz4")
        cursor.execute(
            "SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute"
            " WHERE attrelid IN ('simulator_apicall'::regclass, 'simulator_change'::regclass)"
            " AND atttypid = 'jsonb'::regtype ORDER BY 1, 2"
        )
        columns = cursor.fetchall()
    assert columns == [
        ("simulator_apicall", "body", "l"),
        ("simulator_apicall", "query", "l"),
        ("simulator_apicall", "response", "l"),
        ("simulator_change", "after", "l"),
        ("simulator_change", "before", "l"),
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
def test_a_call_commits_without_waiting_for_the_wal_flush(ada):
    # Inside the test's transaction the trace statement's setting outlives it, where it can be seen.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO on")  # the fork of the fixture set it off
        assert SimClient(ada.world, ada).get("/rest/api/3/myself").status_code == 200
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
