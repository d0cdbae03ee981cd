"""A call's trace statement sent without waiting for its answer (simulator.trace.
UnansweredStatement, PostgreSQL): the call returns first, the connection's next statement reads the
answer, sees what the call wrote, and raises if the statement failed instead of dropping it."""

import time

import pytest
from django.db import connection

from simulator import trace
from simulator.client import SimClient
from simulator.models import ApiCall, Issue, IssueLabel, User
from tests.simulator.conftest import ADA

V3 = "/rest/api/3"

pytestmark = [
    pytest.mark.django_db(transaction=True),  # only the outermost transaction of a call is unanswered
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'",
        reason="only PostgreSQL sends a trace statement without waiting (SQLite has no such protocol)",
    ),
]


@pytest.fixture
def client():
    from simulator.seeding import load_seed

    world = load_seed("acme").fork()
    return SimClient(world, User.objects.get(world=world, account_id=ADA), wait=False)


def labels(world, key):
    found = IssueLabel.objects.filter(issue__world=world, issue__key=key)
    return sorted(found.values_list("name", flat=True))


def test_the_next_statement_sees_what_the_call_wrote(client):
    calls = ApiCall.objects.filter(world=client.world).count()
    assert client.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": "seen"}]}}).status_code == 204
    assert trace.unanswered(connection) is not None  # the call returned before its answer
    assert "seen" in labels(client.world, "OPS-1")  # the held label INSERT went with the trace
    assert trace.unanswered(connection) is None
    assert ApiCall.objects.filter(world=client.world).count() == calls + 1
    r = client.get(f"{V3}/issue/OPS-1", params={"fields": "labels"})
    assert "seen" in r.json()["fields"]["labels"]


def test_a_client_that_waits_reads_every_answer(client):
    waiting = SimClient(client.world, client.user)
    assert waiting.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": "x"}]}}).status_code == 204
    assert trace.unanswered(connection) is None


def _doom_next_call(world):
    """A trace row already holding the sequence number the world's next call will take, as a
    second writer to the same world would leave it: that call's trace statement must fail."""
    ApiCall.objects.create(
        world=world, seq=world.ticks + 1, door="client", method="GET", path="/x", query={}, status=200,
        operation="", duration_ms=0, at=world.now(),
    )  # fmt: skip


def test_a_failed_statement_is_raised_by_the_next_statement(client):
    _doom_next_call(client.world)
    r = client.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": "lost"}]}})
    assert r.status_code == 204  # answered before the statement failed
    with pytest.raises(trace.TraceStatementFailed, match="sim_apicall_seq"):
        ApiCall.objects.filter(world=client.world).count()
    assert "lost" not in labels(client.world, "OPS-1")  # the call is lost whole, never half of it
    assert trace.unanswered(connection) is None  # heard once, and the connection still works


def test_the_next_call_raises_instead_of_answering(client):
    _doom_next_call(client.world)
    assert client.get(f"{V3}/issue/OPS-1").status_code == 200
    with pytest.raises(trace.TraceStatementFailed):
        client.get(f"{V3}/issue/OPS-2")  # not a 400 traced as if the world were whole


def test_finish_unanswered_reads_the_answer_without_a_statement(client):
    _doom_next_call(client.world)
    assert client.get(f"{V3}/issue/OPS-1").status_code == 200
    with pytest.raises(trace.TraceStatementFailed):
        trace.finish_unanswered()
    trace.finish_unanswered()  # nothing left to read


def test_a_connection_closed_before_the_answer_was_read(client):
    assert client.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": "kept"}]}}).status_code == 204
    connection.close()
    # The wrapper outlived the connection it was sent on; the next statement, on a new connection,
    # must not read from the old one. The server ran the statement it had received whole.
    deadline = time.monotonic() + 10
    while "kept" not in labels(client.world, "OPS-1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "kept" in labels(client.world, "OPS-1")
    assert trace.unanswered(connection) is None
    assert client.get(f"{V3}/issue/OPS-1").status_code == 200


CREATE = {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "made"}}


def idle():
    """No transaction left open on the connection (libpq's own view, not psycopg2's)."""
    import psycopg2.extensions

    connection.ensure_connection()
    return connection.connection.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_create_commits_with_its_unanswered_trace(client):
    r = client.post(f"{V3}/issue", json=CREATE)
    assert r.status_code == 201
    assert trace.unanswered(connection) is not None
    assert Issue.objects.filter(world=client.world, key=r.json()["key"]).exists()
    assert idle()


def test_a_create_that_fails_after_writing_is_rolled_back(client):
    body = {
        **CREATE,
        "update": {"issuelinks": [{"add": {"type": {"name": "Blocks"}, "outwardIssue": {"key": "OPS-999"}}}]},
    }
    count = Issue.objects.filter(world=client.world).count()
    assert client.post(f"{V3}/issue", json=body).status_code == 404
    assert idle()
    assert Issue.objects.filter(world=client.world).count() == count


def test_a_create_whose_unanswered_trace_fails_is_rolled_back(client):
    _doom_next_call(client.world)
    count = Issue.objects.filter(world=client.world).count()
    assert client.post(f"{V3}/issue", json=CREATE).status_code == 201
    with pytest.raises(trace.TraceStatementFailed):
        trace.finish_unanswered()
    assert idle()  # the COMMIT after the failed statement never ran: rolled back, not left open
    assert Issue.objects.filter(world=client.world).count() == count


LABEL = 'it\'s"q",{b}\\z'  # what PostgreSQL's array and text input forms must escape


def test_an_unanswered_statement_is_bound_to_its_parameters_as_text(client):
    from django.test.utils import CaptureQueriesContext

    from simulator.models import Comment

    adf = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "é ' \\ %s"}]}],
    }
    with CaptureQueriesContext(connection) as ctx:
        assert (
            client.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": LABEL}]}}).status_code == 204
        )
        r = client.post(f"{V3}/issue/OPS-1/comment", json={"body": adf})
        assert r.status_code == 201
        assert client.get(f"{V3}/issue/OPS-1").status_code == 200
    bound = [q["sql"] for q in ctx.captured_queries if q["sql"].endswith(" parameters)")]
    assert len(bound) == 3  # labels, the comment (a JSON body), the read: none fell back to quoting
    comment = Comment.objects.get(issue__world=client.world, ext_id=int(r.json()["id"]))
    assert comment.body == adf  # the values arrive as they were sent
    assert LABEL in labels(client.world, "OPS-1")
    call = ApiCall.objects.filter(world=client.world).order_by("-seq")[1]
    assert call.body == {"body": adf} and call.response == r.json()
