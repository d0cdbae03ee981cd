"""Jira platform: the paged configuration searches (/priority/search, /statuses/search), checked
against the official response schemas."""

from tests.simulator.schemas import validate

V3 = "/rest/api/3"


def test_priority_search_pages_the_priorities(jira):
    first = jira.get(f"{V3}/priority/search", params={"maxResults": 2})
    assert first.status_code == 200
    body = first.json()
    validate(body, "/rest/api/3/priority/search")
    assert len(body["values"]) == 2 and body["isLast"] is False and body["startAt"] == 0
    assert body["nextPage"].startswith("http://127.0.0.1:8000/sim/") and "startAt=2" in body["nextPage"]
    everything = jira.get(f"{V3}/priority").json()
    assert body["total"] == len(everything)
    assert [p["name"] for p in body["values"]] == [p["name"] for p in everything[:2]]


def test_priority_search_filters_by_name_id_and_default(jira):
    everything = jira.get(f"{V3}/priority").json()
    default = [p for p in everything if p["isDefault"]]
    only = jira.get(f"{V3}/priority/search", params={"onlyDefault": "True"}).json()
    assert [p["id"] for p in only["values"]] == [p["id"] for p in default]
    named = jira.get(f"{V3}/priority/search", params={"priorityName": "HIGH"}).json()
    assert {p["name"] for p in named["values"]} == {
        p["name"] for p in everything if "high" in p["name"].lower()
    }
    by_id = jira.get(f"{V3}/priority/search", params={"id": everything[0]["id"]}).json()
    assert [p["id"] for p in by_id["values"]] == [everything[0]["id"]] and by_id["isLast"] is True
    bad = jira.get(f"{V3}/priority/search", params={"id": "x"})
    assert bad.status_code == 400 and bad.json()["errorMessages"]


def test_statuses_search_filters_by_project_name_and_category(jira):
    r = jira.get(f"{V3}/statuses/search")
    assert r.status_code == 200
    body = r.json()
    validate(body, "/rest/api/3/statuses/search")
    assert body["total"] == len(jira.get(f"{V3}/status").json()) and body["isLast"] is True
    done = jira.get(f"{V3}/statuses/search", params={"statusCategory": "done"}).json()
    assert done["values"] and {s["statusCategory"] for s in done["values"]} == {"DONE"}
    project = jira.get(f"{V3}/project/OPS").json()
    in_ops = jira.get(f"{V3}/statuses/search", params={"projectId": project["id"]}).json()
    ops_statuses = jira.get(f"{V3}/project/OPS/statuses").json()[0]["statuses"]
    assert {s["id"] for s in in_ops["values"]} == {s["id"] for s in ops_statuses}
    named = jira.get(f"{V3}/statuses/search", params={"searchString": "progress"}).json()
    assert named["values"] and all("progress" in s["name"].lower() for s in named["values"])


def test_statuses_search_refuses_unknown_projects_and_categories(jira):
    for params in ({"projectId": "999999"}, {"projectId": "OPS"}, {"statusCategory": "SOON"}):
        r = jira.get(f"{V3}/statuses/search", params=params)
        assert r.status_code == 400 and r.json()["errorMessages"], params
