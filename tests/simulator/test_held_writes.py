"""Writes held for the trace statement (simulator.trace.write) and reads outside the call's
transaction (simulator.trace.ReadsOutsideTransaction): on PostgreSQL a call's last writes go out
with its trace, and a call that writes nothing else needs no COMMIT; nothing a call answers or
leaves behind may differ from running every write at once inside one transaction."""

import pytest
from django.db import connection

from simulator import prepared, routing, trace
from simulator.client import SimClient
from simulator.models import ApiCall, Change, Comment, Issue, IssueLabel, Page, Space, User
from tests.simulator.conftest import ADA

V3 = "/rest/api/3"
ADF = {
    "type": "doc",
    "version": 1,
    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}],
}


def script(space_id):
    """Every path that holds a write, and the calls that read them back or fail after them."""
    issue = f"{V3}/issue/OPS-21"
    page_create = (
        "POST",
        "/wiki/api/v2/pages",
        None,
        {
            "spaceId": str(space_id),
            "title": "Held page",
            "body": {"representation": "storage", "value": "<p>x</p>"},
        },
    )
    return [
        (
            "POST",
            f"{V3}/issue",
            None,
            {
                "fields": {
                    "project": {"key": "OPS"},
                    "issuetype": {"name": "Task"},
                    "summary": "held",
                    "labels": ["a", "b"],
                },
                "update": {"comment": [{"add": {"body": ADF}}]},
            },
        ),
        ("PUT", issue, None, {"update": {"labels": [{"add": "c"}]}}),
        ("PUT", issue, None, {"update": {"labels": [{"remove": "a"}]}}),
        ("PUT", issue, None, {"fields": {"labels": ["c", "b", "z"]}}),  # a reorder rewrites the list
        # held label writes and the issue UPDATE, then read back in the same call
        ("PUT", issue, {"returnIssue": "true"}, {"fields": {"summary": "again", "labels": ["c", "y"]}}),
        # held writes, then a 404 on the link: the call is rolled back whole
        (
            "PUT",
            issue,
            None,
            {
                "update": {
                    "labels": [{"add": "lost"}],
                    "issuelinks": [{"add": {"type": {"name": "Blocks"}, "outwardIssue": {"key": "OPS-999"}}}],
                }
            },
        ),
        (
            "POST",
            f"{issue}/transitions",
            None,
            {"transition": {"id": "11"}, "update": {"comment": [{"add": {"body": ADF}}]}},
        ),
        ("POST", f"{issue}/comment", None, {"body": ADF}),
        ("POST", f"{issue}/comment", None, {"body": ADF}),
        ("GET", issue, {"fields": "*all"}, None),
        page_create,  # the same title twice: the second is refused
        page_create,
        ("GET", "/wiki/api/v2/pages", {"title": "Held page", "body-format": "storage"}, None),
    ]


def play(world, wait=True):
    client = SimClient(world, User.objects.get(world=world, account_id=ADA), wait=wait)
    space_id = Space.objects.get(world=world, key="ENG").ext_id
    answers = []
    for method, path, params, body in script(space_id):
        r = client.request(method, path, params=params, json=body)
        answers.append((r.status_code, r.text.replace(world.slug, "WORLD")))
    return answers, state(world)


def state(world):
    """What the calls left in the world, without the primary keys a fork renumbers."""
    return {
        "calls": list(ApiCall.objects.filter(world=world).values_list("seq", "status", "operation")),
        "changes": list(
            Change.objects.filter(world=world)
            .order_by("call__seq", "id")
            .values_list("call__seq", *trace.CHANGE_FIELDS)
        ),
        "labels": list(
            IssueLabel.objects.filter(world=world)
            .order_by("issue__key", "position")
            .values_list("issue__key", "position", "name")
        ),
        "issues": list(
            Issue.objects.filter(world=world)
            .order_by("key")
            .values_list("key", "summary", "updated", "status__name")
        ),
        "comments": list(
            Comment.objects.filter(world=world)
            .order_by("ext_id")
            .values_list("issue__key", "ext_id", "body", "created")
        ),
        "pages": list(
            Page.objects.filter(world=world)
            .order_by("ext_id")
            .values_list("ext_id", "title", "position", "parent__ext_id", "body")
        ),
    }


def test_holding_writes_changes_no_answer_and_no_row(acme_template, monkeypatch):
    held = play(acme_template.fork())
    monkeypatch.setattr(routing, "hold_writes", lambda: trace._HELD.set(None))  # every write at once
    at_once = play(acme_template.fork())
    assert held == at_once
    statuses = [status for status, _ in held[0]]
    assert statuses == [201, 204, 204, 204, 200, 404, 204, 201, 201, 200, 200, 400, 200]


def test_a_write_held_is_run_before_the_call_reads_again(jira):
    r = jira.put(
        f"{V3}/issue/WEB-7", params={"returnIssue": "true"}, json={"update": {"labels": [{"add": "seen"}]}}
    )
    assert r.status_code == 200
    assert "seen" in r.json()["fields"]["labels"]
    assert r.json()["fields"]["updated"] == jira.get(f"{V3}/issue/WEB-7").json()["fields"]["updated"]


def test_a_failed_call_drops_what_it_held(jira):
    before = sorted(
        IssueLabel.objects.filter(issue__world=jira.world, issue__key="WEB-7").values_list("name", flat=True)
    )
    body = {
        "update": {
            "labels": [{"add": "lost"}],
            "issuelinks": [{"add": {"type": {"name": "Blocks"}, "outwardIssue": {"key": "WEB-999"}}}],
        }
    }
    assert jira.put(f"{V3}/issue/WEB-7", json=body).status_code == 404
    after = sorted(
        IssueLabel.objects.filter(issue__world=jira.world, issue__key="WEB-7").values_list("name", flat=True)
    )
    assert after == before
    assert jira.get(f"{V3}/issue/WEB-7").status_code == 200  # and the next call holds nothing stale
    assert trace._HELD.get() is None


@pytest.mark.parametrize("n_labels", [1, 3])
def test_labels_keep_their_order(jira, n_labels):
    names = [f"n{i}" for i in range(n_labels)]
    assert jira.put(f"{V3}/issue/WEB-7", json={"fields": {"labels": names}}).status_code == 204
    assert jira.put(f"{V3}/issue/WEB-7", json={"update": {"labels": [{"add": "last"}]}}).status_code == 204
    assert jira.get(f"{V3}/issue/WEB-7", params={"fields": "labels"}).json()["fields"]["labels"] == [
        *names,
        "last",
    ]


# Reads outside the transaction only happen where the call's transaction is the outermost one, so
# these tests commit for real (transaction=True) instead of running inside the test's transaction.


@pytest.mark.django_db(transaction=True)
def test_reading_outside_the_transaction_changes_no_answer_and_no_row(monkeypatch):
    from simulator.seeding import load_seed

    template = load_seed("acme")
    lazy = play(template.fork())
    # not waiting for the trace statements, bound to their parameters as text (UnansweredStatement)
    assert play(template.fork(), wait=False) == lazy
    monkeypatch.setattr(routing, "reads_outside_transaction", lambda: None)
    in_one_transaction = play(template.fork())
    monkeypatch.setattr(routing, "hold_writes", lambda: trace._HELD.set(None))
    as_before = play(template.fork())
    assert lazy == in_one_transaction == as_before


def is_trace_statement(sql):
    """Whether ``sql`` (as a connection executes it: the EXECUTE of a prepared statement) is a
    call's trace statement."""
    words = sql.split(None, 2)
    if words[0] == "PREPARE":
        return False
    if words[0] == "EXECUTE":
        names = {name: text for text, (name, _, _) in prepared._STATEMENTS.items()}
        sql = names.get(words[1].split("(")[0], "")
    return "INSERT INTO simulator_apicall" in sql


@pytest.mark.django_db(transaction=True)
def test_a_call_that_writes_only_its_trace_commits_with_it():
    from simulator.seeding import load_seed

    world = load_seed("acme").fork()
    client = SimClient(world, User.objects.get(world=world, account_id=ADA))
    seen = []

    def watch(execute, sql, params, many, context):
        if connection.vendor == "postgresql" and is_trace_statement(sql):
            seen.append((connection.connection.autocommit, sql.endswith("; COMMIT")))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        assert client.get(f"{V3}/issue/OPS-1").status_code == 200
        assert client.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": "x"}]}}).status_code == 204
        body = {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"}}
        assert client.post(f"{V3}/issue", json=body).status_code == 201
        assert client.get(f"{V3}/issue/OPS-999").status_code == 404
    if connection.vendor == "postgresql":
        # get and edit: one statement, no transaction around it; create writes first, and its
        # trace statement carries the COMMIT; a failed call's trace is written in a (psycopg2)
        # transaction of its own
        assert seen == [(True, False), (True, False), (True, True), (False, False)]
    assert ApiCall.objects.filter(world=world).count() == 4
    assert list(
        IssueLabel.objects.filter(issue__world=world, issue__key="OPS-1", name="x").values_list(
            "name", flat=True
        )
    ) == ["x"]
    assert connection.get_autocommit() and not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_call_that_fails_after_it_began_writing_leaves_nothing():
    from simulator.seeding import load_seed

    world = load_seed("acme").fork()
    client = SimClient(world, User.objects.get(world=world, account_id=ADA))
    body = {
        "fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"},
        "update": {"issuelinks": [{"add": {"type": {"name": "Blocks"}, "outwardIssue": {"key": "OPS-999"}}}]},
    }
    count = Issue.objects.filter(world=world).count()
    assert client.post(f"{V3}/issue", json=body).status_code == 404
    assert Issue.objects.filter(world=world).count() == count
    assert ApiCall.objects.filter(world=world).values_list("status", flat=True).get() == 404
