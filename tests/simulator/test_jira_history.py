"""An issue's edit metadata and its change history (changelog, expand=changelog), from the
world's change records; checked against the official response schemas."""

from tests.simulator.schemas import validate

V3, V2 = "/rest/api/3", "/rest/api/2"
GRACE = "712020:0a1b2c3d-0002-4e5f-8a9b-acme00000002"


def test_editmeta_lists_what_an_edit_may_set(jira):
    r = jira.get(f"{V3}/issue/WEB-2/editmeta")
    assert r.status_code == 200
    validate(r.json(), "/rest/api/3/issue/{issueIdOrKey}/editmeta")
    fields = r.json()["fields"]
    assert "project" not in fields and fields["summary"]["required"] is True
    assert fields["labels"]["operations"] == ["set", "add", "remove"]
    assert {p["name"] for p in fields["priority"]["allowedValues"]} >= {"High", "Low"}
    assert all(not t["subtask"] for t in fields["issuetype"]["allowedValues"])
    assert jira.get(f"{V3}/issue/NOPE-1/editmeta").status_code == 404


def test_each_call_that_changed_the_issue_is_one_history(jira):
    jira.put(
        f"{V3}/issue/WEB-2", json={"update": {"labels": [{"add": "beta"}]}, "fields": {"summary": "New"}}
    )
    offered = jira.get(f"{V3}/issue/WEB-2/transitions").json()["transitions"]
    done = next(t for t in offered if t["to"]["statusCategory"]["key"] == "done")
    assert (
        jira.post(f"{V3}/issue/WEB-2/transitions", json={"transition": {"id": done["id"]}}).status_code == 204
    )
    jira.put(f"{V2}/issue/WEB-2/assignee", json={"accountId": GRACE})  # already hers: no change
    r = jira.get(f"{V3}/issue/WEB-2/changelog")
    assert r.status_code == 200
    body = r.json()
    validate(body, "/rest/api/3/issue/{issueIdOrKey}/changelog")
    assert body["total"] == 2 and body["isLast"] is True
    edit, transition = body["values"]
    assert edit["author"]["accountId"] == jira.user.account_id and edit["created"].endswith("+0000")
    items = {i["field"]: i for i in edit["items"]}
    assert (
        items["summary"]["toString"] == "New"
        and items["summary"]["fromString"] == "Single-page checkout layout"
    )
    assert items["labels"]["toString"] == "checkout frontend beta"
    assert {i["field"] for i in transition["items"]} >= {"status", "resolution"}
    assert int(transition["id"]) > int(edit["id"])


def test_changelog_pages_and_expands_on_the_issue(jira):
    for label in ("a", "b", "c"):
        jira.put(f"{V3}/issue/OPS-1", json={"update": {"labels": [{"add": label}]}})
    page = jira.get(f"{V3}/issue/OPS-1/changelog", params={"startAt": 1, "maxResults": 1}).json()
    assert page["total"] == 3 and len(page["values"]) == 1 and page["isLast"] is False
    assert "startAt=2" in page["nextPage"]
    issue = jira.get(f"{V3}/issue/OPS-1", params={"expand": "changelog"}).json()
    validate(issue, "/rest/api/3/issue/{issueIdOrKey}")
    assert issue["changelog"]["total"] == 3 and len(issue["changelog"]["histories"]) == 3
    assert "changelog" not in jira.get(f"{V3}/issue/OPS-1").json()


def test_an_assignment_shows_account_ids_and_names(jira):
    jira.put(f"{V3}/issue/OPS-1/assignee", json={"accountId": GRACE})
    (history,) = jira.get(f"{V3}/issue/OPS-1/changelog").json()["values"]
    (item,) = history["items"]
    assert item["field"] == "assignee" and item["to"] == GRACE and item["toString"]
