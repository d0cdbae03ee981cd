"""Jira platform issues through the in-process door: create, read, edit, delete, assign,
transitions, comments, watchers, links; error shapes as Cloud gives them."""

import pytest

from simulator.adf import text_to_adf
from tests.simulator.schemas import validate

V3, V2 = "/rest/api/3", "/rest/api/2"
GRACE = "712020:0a1b2c3d-0002-4e5f-8a9b-acme00000002"


def create(jira, version=V3, **fields):
    base = {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "Write the release notes"}
    return jira.post(f"{version}/issue", json={"fields": {**base, **fields}})


def test_create_answers_id_key_and_an_absolute_self(jira):
    r = create(jira, labels=["docs"], priority={"name": "High"}, assignee={"accountId": GRACE})
    assert r.status_code == 201
    body = r.json()
    assert body["key"] == "WEB-23"
    assert body["self"] == f"http://127.0.0.1:8000/sim/{jira.world.slug}/rest/api/3/issue/{body['id']}"
    validate(body, "/rest/api/3/issue", "post", "201")
    issue = jira.get(body["self"]).json()["fields"]
    assert issue["labels"] == ["docs"] and issue["priority"]["name"] == "High"
    assert issue["assignee"]["accountId"] == GRACE and issue["status"]["name"] == "To Do"
    assert issue["reporter"]["accountId"] == jira.user.account_id


def test_get_issue_fits_the_official_schema(jira):
    r = jira.get(f"{V3}/issue/WEB-2", params={"fields": "*all", "expand": "names,schema,transitions"})
    validate(r.json(), "/rest/api/3/issue/{issueIdOrKey}")
    assert r.json()["fields"]["customfield_10020"][0]["state"] == "active"
    assert r.json()["fields"]["parent"]["key"] == "WEB-1"


def test_missing_summary_is_a_field_error(jira):
    r = jira.post(f"{V3}/issue", json={"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}}})
    assert r.status_code == 400
    assert r.json() == {
        "errorMessages": [],
        "errors": {"summary": "You must specify a summary of the issue."},
    }


def test_unknown_field_is_refused(jira):
    r = create(jira, customfield_99999="x")
    assert r.status_code == 400
    message = "Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown."
    assert r.json()["errors"] == {"customfield_99999": message}


def test_unknown_issue_type_and_project(jira):
    assert create(jira, issuetype={"name": "Saga"}).json()["errors"] == {
        "issuetype": "Specify a valid issue type"
    }
    assert create(jira, project={"key": "NOPE"}).json()["errors"] == {
        "project": "Specify a valid project ID or key"
    }


def test_v3_wants_adf_and_v2_takes_strings(jira):
    r = create(jira, description="plain text")
    assert r.status_code == 400 and "Atlassian Document" in r.json()["errors"]["description"]
    key = create(jira, version=V2, description="line one\nline two").json()["key"]
    assert jira.get(f"{V2}/issue/{key}").json()["fields"]["description"] == "line one\nline two"
    assert jira.get(f"{V3}/issue/{key}").json()["fields"]["description"] == text_to_adf("line one\nline two")


def test_sub_tasks_need_a_parent(jira):
    r = create(jira, issuetype={"name": "Sub-task"})
    assert r.status_code == 400 and "parent" in r.json()["errors"]
    assert create(jira, issuetype={"name": "Sub-task"}, parent={"key": "WEB-2"}).status_code == 201


def test_fields_selection(jira):
    def fields(spec):
        return set(jira.get(f"{V3}/issue/WEB-7", params={"fields": spec}).json()["fields"])

    assert fields("summary,status") == {"summary", "status"}
    assert fields("*none") == set()
    assert "comment" in fields("*all") and "comment" not in fields("*navigable")
    assert "summary" not in fields("*all,-summary")


def test_unknown_issue_is_404_by_key_and_id(jira):
    for ref in ("WEB-999", "99999999"):
        r = jira.get(f"{V3}/issue/{ref}")
        assert r.status_code == 404
        assert r.json() == {
            "errorMessages": ["Issue does not exist or you do not have permission to see it."],
            "errors": {},
        }


def test_edit_with_fields_and_update_verbs(jira):
    r = jira.put(
        f"{V2}/issue/WEB-7",
        json={
            "fields": {"summary": "Discount lost on reload"},
            "update": {"labels": [{"add": "urgent"}, {"remove": "regression"}]},
            "notifyUsers": "true",  # unknown top-level keys are ignored
        },
    )
    assert r.status_code == 204 and r.text == ""
    fields = jira.get(f"{V3}/issue/WEB-7", params={"fields": "summary,labels"}).json()["fields"]
    assert fields == {"summary": "Discount lost on reload", "labels": ["checkout", "urgent"]}


def test_labels_keep_the_order_they_were_given_in(jira):
    def labels():
        return jira.get(f"{V3}/issue/WEB-7", params={"fields": "labels"}).json()["fields"]["labels"]

    jira.put(f"{V3}/issue/WEB-7", json={"update": {"labels": [{"add": "b"}, {"add": "a"}]}})
    assert labels() == ["checkout", "regression", "b", "a"]
    jira.put(f"{V3}/issue/WEB-7", json={"update": {"labels": [{"remove": "checkout"}, {"add": "c"}]}})
    assert labels() == ["regression", "b", "a", "c"]
    jira.put(f"{V3}/issue/WEB-7", json={"fields": {"labels": ["c", "regression", "z"]}})
    assert labels() == ["c", "regression", "z"]


def test_edit_refuses_a_field_in_both_fields_and_update(jira):
    r = jira.put(
        f"{V3}/issue/WEB-7", json={"fields": {"labels": ["a"]}, "update": {"labels": [{"add": "b"}]}}
    )
    assert r.status_code == 400 and "labels" in r.json()["errors"]


def test_edit_refuses_unknown_keys_inside_fields(jira):
    r = jira.put(f"{V3}/issue/WEB-7", json={"fields": {"colour": "red"}})
    assert r.status_code == 400 and "colour" in r.json()["errors"]


def test_edit_through_the_numeric_self(jira):
    issue = jira.get(f"{V2}/issue/WEB-7").json()
    assert (
        jira.put(issue["self"], json={"fields": {}, "update": {"labels": [{"set": ["x"]}]}}).status_code
        == 204
    )
    assert jira.get(issue["self"]).json()["fields"]["labels"] == ["x"]


def test_delete_needs_delete_subtasks_when_it_has_some(jira):
    r = jira.delete(f"{V3}/issue/WEB-2", params={"deleteSubtasks": "False"})
    assert r.status_code == 400
    assert jira.delete(f"{V3}/issue/WEB-2", params={"deleteSubtasks": "TRUE"}).status_code == 204
    assert jira.get(f"{V3}/issue/WEB-5").status_code == 404  # its sub-task went with it
    assert jira.get(f"{V3}/issue/WEB-1").status_code == 200  # its epic stays


def test_assign_unassign_and_project_default(jira):
    path = f"{V3}/issue/WEB-16/assignee"

    def assignee():
        return jira.get(f"{V3}/issue/WEB-16", params={"fields": "assignee"}).json()["fields"]["assignee"]

    assert jira.put(path, json={"accountId": GRACE}).status_code == 204
    assert assignee()["accountId"] == GRACE
    assert jira.put(path, json={"accountId": None}).status_code == 204
    assert assignee() is None
    assert jira.put(path, json={"accountId": "-1"}).status_code == 204
    assert assignee()["displayName"] == "Ada Lovelace"  # WEB's lead
    assert jira.put(path, json={"accountId": "nobody"}).status_code == 400


def test_transitions_offer_only_what_the_workflow_allows(jira):
    body = jira.get(f"{V3}/issue/MOB-4/transitions").json()
    validate(body, "/rest/api/3/issue/{issueIdOrKey}/transitions")
    assert {t["name"] for t in body["transitions"]} == {"Start Progress", "Resolve Issue", "Close Issue"}
    assert all(t["id"].isdigit() and t["to"]["name"] for t in body["transitions"])


def test_invalid_transition_is_refused(jira):
    r = jira.post(f"{V3}/issue/MOB-4/transitions", json={"transition": {"id": "51"}})
    assert r.status_code == 400
    assert r.json()["errorMessages"] == ["Transition id '51' is not valid for this issue."]


def test_transition_needs_its_screen_fields(jira):
    r = jira.post(f"{V3}/issue/MOB-4/transitions", json={"transition": {"id": 31}, "fields": {}})
    assert r.status_code == 400 and "resolution" in r.json()["errors"]
    r = jira.post(
        f"{V3}/issue/MOB-4/transitions",
        json={"transition": {"id": 31}, "fields": {"resolution": {"name": "Done"}}},
    )
    assert r.status_code == 204 and r.text == ""
    fields = jira.get(f"{V3}/issue/MOB-4", params={"fields": "status,resolution,resolutiondate"}).json()[
        "fields"
    ]
    assert fields["status"]["name"] == "Resolved" and fields["resolution"]["name"] == "Done"
    assert fields["resolutiondate"]


@pytest.mark.parametrize("spec", [{"id": 21}, {"id": "21"}, {"name": "In Progress"}])
def test_transition_by_int_string_id_or_name(jira, spec):
    r = jira.post(f"{V2}/issue/WEB-3/transitions", json={"transition": spec, "fields": {}})
    assert r.status_code == 204
    assert jira.get(f"{V3}/issue/WEB-3").json()["fields"]["status"]["name"] == "In Progress"


def test_reaching_done_resolves_and_leaving_it_unresolves(jira):
    jira.post(f"{V3}/issue/WEB-3/transitions", json={"transition": {"id": "31"}})
    assert jira.get(f"{V3}/issue/WEB-3").json()["fields"]["resolution"]["name"] == "Done"
    jira.post(f"{V3}/issue/WEB-3/transitions", json={"transition": {"id": "11"}})
    assert jira.get(f"{V3}/issue/WEB-3").json()["fields"]["resolution"] is None


def test_comments_add_list_update_delete(jira):
    path = f"{V2}/issue/OPS-5/comment"
    made = jira.post(path, json={"body": "Disk at 60% now."})
    assert made.status_code == 201
    comment = made.json()
    assert comment["body"] == "Disk at 60% now." and comment["author"]["accountId"] == jira.user.account_id
    listing = jira.get(f"{V3}/issue/OPS-5/comment").json()
    validate(listing, "/rest/api/3/issue/{issueIdOrKey}/comment")
    assert listing["total"] == 2
    assert listing["comments"][-1]["body"]["type"] == "doc"
    updated = jira.put(f"{path}/{comment['id']}", json={"body": "Disk at 55%."})
    assert updated.json()["body"] == "Disk at 55%."
    assert jira.delete(f"{path}/{comment['id']}").status_code == 204
    assert jira.get(f"{path}/{comment['id']}").status_code == 404


def test_v3_comment_must_be_adf(jira):
    r = jira.post(f"{V3}/issue/OPS-5/comment", json={"body": "plain"})
    assert r.status_code == 400 and "comment" in r.json()["errors"]


def test_watchers(jira):
    path = f"{V3}/issue/WEB-16/watchers"
    assert jira.post(path, json=GRACE).status_code == 204
    body = jira.get(path).json()
    assert body["watchCount"] == 1 and body["watchers"][0]["accountId"] == GRACE
    assert jira.delete(path, params={"accountId": GRACE}).status_code == 204
    assert jira.get(path).json()["watchCount"] == 0


def test_link_direction_inward_blocks_outward(jira):
    body = {"type": {"name": "Blocks"}, "inwardIssue": {"key": "WEB-3"}, "outwardIssue": {"key": "WEB-4"}}
    r = jira.post(f"{V2}/issueLink", json={**body, "comment": None})
    assert r.status_code == 201 and r.text == ""
    assert jira.post(f"{V2}/issueLink", json=body).status_code == 201  # not duplicated
    a = jira.get(f"{V3}/issue/WEB-3", params={"fields": "issuelinks"}).json()["fields"]["issuelinks"]
    b = jira.get(f"{V3}/issue/WEB-4", params={"fields": "issuelinks"}).json()["fields"]["issuelinks"]
    (a_link,) = [entry for entry in a if entry["type"]["name"] == "Blocks"]
    assert a_link["outwardIssue"]["key"] == "WEB-4"
    assert [entry["inwardIssue"]["key"] for entry in b] == ["WEB-3"]
    link = jira.get(a_link["self"]).json()
    validate(link, "/rest/api/3/issueLink/{linkId}")
    assert jira.delete(a_link["self"]).status_code == 204
    assert jira.get(f"{V3}/issue/WEB-4", params={"fields": "issuelinks"}).json()["fields"]["issuelinks"] == []


def test_link_to_an_unknown_issue_is_404(jira):
    r = jira.post(
        f"{V3}/issueLink",
        json={
            "type": {"name": "Blocks"},
            "inwardIssue": {"key": "WEB-3"},
            "outwardIssue": {"key": "WEB-999"},
        },
    )
    assert r.status_code == 404
