"""The trace and the change log, determinism across forks, and the SQL each call costs."""

import json

import pytest

from simulator.client import SimClient
from simulator.models import ApiCall, Change, User
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


@pytest.mark.parametrize(
    "method,path,params,body,budget",
    [
        ("GET", f"{V3}/issue/WEB-2", {"fields": "*all"}, None, 16),
        ("GET", f"{V3}/search/jql", {"jql": "project = WEB", "fields": "*all", "maxResults": 50}, None, 18),
        ("PUT", f"{V3}/issue/WEB-7", None, {"update": {"labels": [{"add": "x"}]}}, 16),
        ("POST", f"{V3}/issue/WEB-7/transitions", None, {"transition": {"id": "21"}}, 14),
        (
            "POST",
            f"{V3}/issue",
            None,
            {"fields": {"project": {"key": "WEB"}, "issuetype": {"id": "10011"}, "summary": "s"}},
            14,
        ),
    ],
)
def test_calls_cost_a_small_fixed_number_of_queries(
    jira, django_assert_max_num_queries, method, path, params, body, budget
):
    jira.get(f"{V3}/priority")  # load the world's configuration once
    with django_assert_max_num_queries(budget):
        r = jira.request(method, path, params=params, json=body)
    assert r.status_code < 300, r.json()
