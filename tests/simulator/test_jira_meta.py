"""Jira platform: instance, users, projects and configuration lists, checked against the
official response schemas."""

import pytest

from tests.simulator.schemas import validate

V3 = "/rest/api/3"


@pytest.mark.parametrize(
    "path,spec",
    [
        ("/serverInfo", "/rest/api/3/serverInfo"),
        ("/myself", "/rest/api/3/myself"),
        ("/project/WEB", "/rest/api/3/project/{projectIdOrKey}"),
        ("/project/search", "/rest/api/3/project/search"),
        ("/project/OPS/statuses", "/rest/api/3/project/{projectIdOrKey}/statuses"),
        ("/field", "/rest/api/3/field"),
        ("/priority", "/rest/api/3/priority"),
        ("/status", "/rest/api/3/status"),
        ("/issuetype", "/rest/api/3/issuetype"),
        ("/resolution", "/rest/api/3/resolution"),
        ("/issueLinkType", "/rest/api/3/issueLinkType"),
        ("/issue/createmeta/WEB/issuetypes", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes"),
        (
            "/issue/createmeta/WEB/issuetypes/10010",
            "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}",
        ),
    ],
)
def test_responses_fit_the_official_schemas(jira, path, spec):
    r = jira.get(V3 + path)
    assert r.status_code == 200, r.json()
    validate(r.json(), spec)


def test_server_info_works_on_every_rest_version(jira):
    for version in ("2", "3", "latest"):
        body = jira.get(f"/rest/api/{version}/serverInfo").json()
        assert body["deploymentType"] == "Cloud" and body["versionNumbers"]


def test_user_search_matches_email_and_name(jira):
    found = jira.get(f"{V3}/user/search", params={"query": "grace@acme.test"}).json()
    assert [u["displayName"] for u in found] == ["Grace Hopper"]
    assert (
        jira.get(f"{V3}/user/search", params={"query": "hop"}).json()[0]["emailAddress"] == "grace@acme.test"
    )


def test_user_search_needs_a_query(jira):
    r = jira.get(f"{V3}/user/search")
    assert r.status_code == 400 and r.json()["errorMessages"]


def test_inactive_users_are_left_out_unless_asked(jira):
    assert jira.get(f"{V3}/user/search", params={"query": "contractor"}).json() == []
    found = jira.get(f"{V3}/user/search", params={"query": "contractor", "includeInactive": "True"}).json()
    assert found[0]["active"] is False


def test_project_search_pages_with_an_absolute_next_page(jira):
    page = jira.get(f"{V3}/project/search", params={"maxResults": 2}).json()
    assert page["total"] == 3 and not page["isLast"]
    assert page["nextPage"].startswith(
        f"http://127.0.0.1:8000/sim/{jira.world.slug}/rest/api/3/project/search?"
    )
    last = jira.get(page["nextPage"]).json()
    assert last["isLast"] and "nextPage" not in last and len(last["values"]) == 1


def test_a_project_is_found_by_id_as_well_as_key(jira):
    by_key = jira.get(f"{V3}/project/WEB").json()
    by_id = jira.get(f"{V3}/project/{by_key['id']}", params={"expand": "issueTypes"}).json()
    assert by_id["key"] == "WEB"
    assert {"Epic", "Story", "Task", "Bug", "Sub-task"} <= {t["name"] for t in by_id["issueTypes"]}


def test_unknown_project_is_404(jira):
    r = jira.get(f"{V3}/project/NOPE")
    assert r.status_code == 404
    assert r.json() == {"errorMessages": ["No project could be found with key 'NOPE'."], "errors": {}}


def test_projects_have_different_workflows(jira):
    def names(key):
        return {s["name"] for s in jira.get(f"{V3}/project/{key}/statuses").json()[0]["statuses"]}

    assert names("WEB") == {"To Do", "In Progress", "Done"}
    assert {"Resolved", "Closed", "Reopened"} <= names("MOB")
    assert {"In Review", "Blocked"} <= names("OPS")


def test_fields_name_the_sprint_and_story_points_fields(jira):
    fields = {f["name"]: f for f in jira.get(f"{V3}/field").json()}
    assert fields["Sprint"]["schema"]["customId"] == 10020
    assert "sprint" in fields["Sprint"]["clauseNames"]
    assert fields["Story point estimate"]["id"] == "customfield_10016"


def test_old_createmeta_lists_fields_when_expanded(jira):
    body = jira.get(
        f"{V3}/issue/createmeta",
        params={"projectKeys": "MOB", "issuetypeNames": "Bug", "expand": "projects.issuetypes.fields"},
    ).json()
    (project,) = body["projects"]
    (bug,) = project["issuetypes"]
    assert bug["fields"]["summary"]["required"] is True
    assert {v["name"] for v in bug["fields"]["components"]["allowedValues"]} == {"iOS", "Android", "API"}
