"""Jira Software agile 1.0: a board's epics (and their issues) and ranking issues.

The agile document gives the epic list only an example, no schema: its shape is checked here
field by field; the rank request is checked against the document's IssueRankRequestBean."""

import functools

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.simulator.schemas import _document

AG = "/rest/agile/1.0"
WEB_BOARD, OPS_BOARD = 1, 2


@functools.cache
def _component_validator(name):
    registry = Registry().with_resource("urn:agile", Resource.from_contents(_document("agile"), DRAFT202012))
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:agile#/components/schemas/{name}"}, registry=registry
    )


def test_a_board_lists_the_epics_of_its_project(jira):
    body = jira.get(f"{AG}/board/{WEB_BOARD}/epic").json()
    assert set(body) == {"maxResults", "startAt", "total", "isLast", "values"}
    assert [e["key"] for e in body["values"]] == ["WEB-1", "WEB-11"] and body["isLast"] is True
    epic = body["values"][0]
    assert set(epic) == {"id", "key", "self", "name", "summary", "color", "done"}
    assert isinstance(epic["id"], int) and epic["self"].endswith(f"{AG}/epic/{epic['id']}")
    assert epic["name"] == "Checkout redesign" and epic["done"] is False and epic["color"]["key"]
    assert jira.get(f"{AG}/board/{WEB_BOARD}/epic", params={"done": "True"}).json()["values"] == []
    assert [e["key"] for e in jira.get(f"{AG}/board/{OPS_BOARD}/epic").json()["values"]] == ["OPS-1"]
    assert jira.get(f"{AG}/board/99/epic").status_code == 404


def test_an_epics_issues_and_the_issues_without_one(jira):
    epic = jira.get(f"{AG}/board/{WEB_BOARD}/epic").json()["values"][0]
    children = jira.get(f"{AG}/board/{WEB_BOARD}/epic/{epic['id']}/issue", params={"fields": "parent"}).json()
    assert children["total"] > 0
    assert {i["fields"]["parent"]["key"] for i in children["issues"]} == {"WEB-1"}
    orphans = jira.get(
        f"{AG}/board/{WEB_BOARD}/epic/none/issue", params={"fields": "parent,issuetype"}
    ).json()
    for issue in orphans["issues"]:
        assert issue["fields"]["issuetype"]["name"] != "Epic"
        assert (issue["fields"].get("parent") or {}).get("key") not in ("WEB-1", "WEB-11")
    assert jira.get(f"{AG}/board/{WEB_BOARD}/epic/999/issue").status_code == 404


def _board_keys(jira):
    body = jira.get(f"{AG}/board/{WEB_BOARD}/issue", params={"fields": "summary", "maxResults": 100}).json()
    return [i["key"] for i in body["issues"]]


def test_ranking_moves_issues_in_the_board_order_and_jql(jira):
    before = _board_keys(jira)
    request = {"issues": ["WEB-5", "WEB-3"], "rankBeforeIssue": "WEB-2"}
    _component_validator("IssueRankRequestBean").validate(request)
    r = jira.put(f"{AG}/issue/rank", json=request)
    assert r.status_code == 204 and r.content == b""
    after = _board_keys(jira)
    rest = [k for k in before if k not in ("WEB-5", "WEB-3")]
    at = rest.index("WEB-2")
    assert after == [*rest[:at], "WEB-5", "WEB-3", *rest[at:]]
    found = jira.get("/rest/api/3/search/jql", params={"jql": "project = WEB ORDER BY rank", "fields": "key"})
    assert [i["key"] for i in found.json()["issues"]] == after
    assert (
        jira.put(f"{AG}/issue/rank", json={"issues": ["WEB-1"], "rankAfterIssue": "WEB-3"}).status_code == 204
    )
    order = _board_keys(jira)
    assert order.index("WEB-1") == order.index("WEB-3") + 1


def test_a_new_issue_ranks_last_and_a_rank_shows_in_the_history(jira):
    jira.put(f"{AG}/issue/rank", json={"issues": ["WEB-4"], "rankBeforeIssue": "WEB-1"})
    created = jira.post(
        "/rest/api/3/issue",
        json={"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "New"}},
    ).json()
    order = _board_keys(jira)
    assert order[0] == "WEB-4" and order[-1] == created["key"]
    (history,) = jira.get("/rest/api/3/issue/WEB-4/changelog").json()["values"]
    assert history["items"] == [
        {"field": "rank", "fieldtype": "jira", "fieldId": "rank", "toString": "Ranked higher"}
    ]


def test_bad_rank_requests_are_refused_in_jiras_shape(jira):
    for body in (
        {"issues": [], "rankBeforeIssue": "WEB-1"},
        {"issues": ["WEB-2"]},
        {"issues": ["WEB-2"], "rankBeforeIssue": "WEB-1", "rankAfterIssue": "WEB-3"},
        {"issues": ["NOPE-1"], "rankBeforeIssue": "WEB-1"},
        {"issues": ["WEB-2"], "rankBeforeIssue": "WEB-2"},
        {"issues": [f"WEB-{n}" for n in range(1, 60)], "rankBeforeIssue": "WEB-1"},
    ):
        r = jira.put(f"{AG}/issue/rank", json=body)
        assert r.status_code == 400, body
        assert set(r.json()) == {"errorMessages", "errors"}
