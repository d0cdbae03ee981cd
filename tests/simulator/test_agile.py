"""Jira Software agile 1.0 through the in-process door: boards, sprints, backlog, moving issues;
responses checked against the official agile schemas; errors in Jira's shape."""

import functools

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.simulator.schemas import _document, validate

AG = "/rest/agile/1.0"
WEB_BOARD, OPS_BOARD = 1, 2
CLOSED, ACTIVE, FUTURE = 1, 2, 3


@functools.cache
def _component_validator(name):
    document = Resource.from_contents(_document("agile"), DRAFT202012)
    registry = Registry().with_resource("urn:agile", document)
    schema = {"$ref": f"urn:agile#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_sprint(body):
    """Sprint answers have no schema on their operations; the document's SprintBean is the shape."""
    _component_validator("SprintBean").validate(body)


def sprint_field(jira, key):
    fields = jira.get(f"/rest/api/3/issue/{key}", params={"fields": "customfield_10020"}).json()["fields"]
    return sorted(s["id"] for s in fields["customfield_10020"] or [])


def changes(world, **criteria):
    from simulator.models import Change

    rows = Change.objects.filter(world=world, **criteria)
    return list(rows.values_list("action", "object_ref", "field", "before", "after"))


# --- Boards ---------------------------------------------------------------------------------------


def test_boards_list_with_location_fits_the_schema(jira):
    r = jira.get(f"{AG}/board")
    assert r.status_code == 200
    body = r.json()
    validate(body, "/rest/agile/1.0/board", doc="agile")
    assert [b["id"] for b in body["values"]] == [WEB_BOARD, OPS_BOARD]
    assert body["total"] == 2 and body["isLast"] is True and body["startAt"] == 0
    web = body["values"][0]
    assert web["self"] == f"http://127.0.0.1:8000/sim/{jira.world.slug}/rest/agile/1.0/board/1"
    assert web["location"]["projectKey"] == "WEB" and isinstance(web["location"]["projectId"], int)


def test_boards_filter_by_type_name_project_and_page(jira):
    def ids(**params):
        return [b["id"] for b in jira.get(f"{AG}/board", params=params).json()["values"]]

    assert ids(type="kanban") == [2] and ids(name="web") == [1] and ids(projectKeyOrId="OPS") == [2]
    page = jira.get(f"{AG}/board", params={"maxResults": 1, "startAt": 0}).json()
    assert len(page["values"]) == 1 and page["isLast"] is False and page["total"] == 2
    r = jira.get(f"{AG}/board", params={"projectKeyOrId": "NOPE"})
    assert r.status_code == 400 and r.json()["errorMessages"]


def test_board_by_id_and_missing_board(jira):
    r = jira.get(f"{AG}/board/1")
    validate(r.json(), "/rest/agile/1.0/board/{boardId}", doc="agile")
    assert r.json()["name"] == "WEB board"
    missing = jira.get(f"{AG}/board/999")
    assert missing.status_code == 404
    assert set(missing.json()) == {"errorMessages", "errors"} and missing.json()["errorMessages"]
    assert jira.get(f"{AG}/board/abc").status_code == 400


def test_board_configuration_maps_columns_to_statuses(jira):
    r = jira.get(f"{AG}/board/1/configuration")
    validate(r.json(), "/rest/agile/1.0/board/{boardId}/configuration", doc="agile")
    columns = r.json()["columnConfig"]["columns"]
    assert columns[0]["name"] == "To Do"
    assert all(c["statuses"] and c["statuses"][0]["id"].isdigit() for c in columns)


def test_board_sprints_are_ordered_closed_active_future(jira):
    r = jira.get(f"{AG}/board/1/sprint")
    assert r.status_code == 200
    values = r.json()["values"]
    assert [(s["id"], s["state"]) for s in values] == [(1, "closed"), (2, "active"), (3, "future")]
    for sprint in values:
        validate_sprint(sprint)
    assert values[0]["completeDate"].endswith("+00:00") and "startDate" not in values[2]
    assert values[1]["originBoardId"] == 1


def test_board_sprints_filter_by_state_csv_and_page(jira):
    r = jira.get(f"{AG}/board/1/sprint", params={"state": "future,active"})
    assert [s["id"] for s in r.json()["values"]] == [ACTIVE, FUTURE]
    page = jira.get(f"{AG}/board/1/sprint", params={"maxResults": 2, "startAt": 2}).json()
    assert [s["id"] for s in page["values"]] == [FUTURE] and page["isLast"] is True
    assert jira.get(f"{AG}/board/1/sprint", params={"state": "running"}).status_code == 400


def test_a_kanban_board_has_no_sprints(jira):
    r = jira.get(f"{AG}/board/{OPS_BOARD}/sprint")
    assert r.status_code == 400
    assert r.json() == {"errorMessages": ["The board does not support sprints"], "errors": {}}


def test_backlog_holds_board_issues_outside_open_sprints(jira):
    r = jira.get(f"{AG}/board/1/backlog", params={"maxResults": 100})
    assert r.status_code == 200
    validate(r.json(), "/rest/agile/1.0/board/{boardId}/backlog", doc="agile")
    keys = {i["key"] for i in r.json()["issues"]}
    assert "WEB-16" in keys and "WEB-8" in keys  # no sprint; a closed sprint only
    assert "WEB-2" not in keys and "WEB-4" not in keys  # active; future
    assert all(k.startswith("WEB-") for k in keys) and r.json()["total"] == len(keys)


def test_board_issues_honour_jql_fields_and_paging(jira):
    r = jira.get(
        f"{AG}/board/1/issue",
        params={"jql": "labels = checkout", "fields": "summary,customfield_10020", "maxResults": 3},
    )
    body = r.json()
    validate(body, "/rest/agile/1.0/board/{boardId}/issue", doc="agile")
    assert len(body["issues"]) == 3 and body["total"] > 3 and body["maxResults"] == 3
    issue = body["issues"][0]
    assert set(issue["fields"]) == {"summary", "customfield_10020"}
    assert issue["self"].endswith(f"/rest/agile/1.0/issue/{issue['id']}")
    bad = jira.get(f"{AG}/board/1/issue", params={"jql": "labels = = x"})
    assert bad.status_code == 400 and "errorMessages" in bad.json()


def test_agile_issues_speak_v2_plain_text(jira):
    r = jira.get(f"{AG}/board/1/issue", params={"jql": "key = WEB-7", "fields": "description,status"})
    fields = r.json()["issues"][0]["fields"]
    assert isinstance(fields["description"], str) and "SAVE10" in fields["description"]
    assert "/rest/api/2/status/" in fields["status"]["self"]
    one = jira.get(f"{AG}/issue/WEB-7", params={"fields": "summary"})
    assert one.status_code == 200 and one.json()["key"] == "WEB-7"


def test_board_issue_list_queries_are_fixed(jira, django_assert_max_num_queries):
    jira.get(f"{AG}/board/1/issue", params={"maxResults": 2})  # warm the world's config cache
    with django_assert_max_num_queries(25) as small:
        jira.get(f"{AG}/board/1/issue", params={"maxResults": 2})
    with django_assert_max_num_queries(len(small.captured_queries)):
        jira.get(f"{AG}/board/1/issue", params={"maxResults": 50})


# --- Sprints --------------------------------------------------------------------------------------


def test_get_sprint_and_missing_sprint(jira):
    r = jira.get(f"{AG}/sprint/{ACTIVE}")
    validate_sprint(r.json())
    assert r.json()["state"] == "active" and r.json()["goal"] == "Checkout redesign beta"
    assert jira.get(f"{AG}/sprint/404").status_code == 404


def test_create_sprint_is_future_with_an_id_from_the_world_counter(jira):
    r = jira.post(f"{AG}/sprint", json={"name": "WEB Sprint 14", "originBoardId": 1, "goal": "Tracking"})
    assert r.status_code == 201
    sprint = r.json()
    validate_sprint(sprint)
    assert sprint["state"] == "future" and sprint["originBoardId"] == 1 and sprint["goal"] == "Tracking"
    assert sprint["createdDate"] == jira.world.now().isoformat(timespec="milliseconds")
    assert jira.get(f"{AG}/sprint/{sprint['id']}").json()["name"] == "WEB Sprint 14"
    assert ("create", str(sprint["id"]), "", None, None) in changes(jira.world, object_type="sprint")


def test_create_sprint_errors(jira):
    r = jira.post(f"{AG}/sprint", json={"originBoardId": 1})
    assert r.status_code == 400 and "name" in r.json()["errors"]
    assert jira.post(f"{AG}/sprint", json={"name": "x", "originBoardId": 99}).status_code == 400
    r = jira.post(f"{AG}/sprint", json={"name": "x", "originBoardId": OPS_BOARD})
    assert r.status_code == 400
    assert r.json()["errors"]["originBoardId"] == "The board does not support sprints"
    r = jira.post(f"{AG}/sprint", json={"name": "x", "originBoardId": 1, "startDate": "soon"})
    assert r.status_code == 400 and "startDate" in r.json()["errors"]


def test_partial_update_changes_only_what_is_given(jira):
    r = jira.post(f"{AG}/sprint/{FUTURE}", json={"goal": "Synonyms first"})
    assert r.status_code == 200
    assert r.json()["goal"] == "Synonyms first" and r.json()["name"] == "WEB Sprint 13"
    assert changes(jira.world, object_type="sprint") == [
        ("update", "3", "goal", "Search relevance", "Synonyms first")
    ]


def test_full_update_clears_what_is_left_out(jira):
    r = jira.put(f"{AG}/sprint/{FUTURE}", json={"name": "Search sprint"})
    assert r.status_code == 200 and r.json()["goal"] == "" and r.json()["name"] == "Search sprint"


def test_starting_a_sprint_needs_dates_and_no_other_active_sprint(jira):
    r = jira.post(f"{AG}/sprint/{FUTURE}", json={"state": "active"})
    assert r.status_code == 400 and "start date" in r.json()["errorMessages"][0]
    dates = {"startDate": "2026-01-12T09:00:00.000+01:00", "endDate": "2026-01-26T17:00:00Z"}
    r = jira.post(f"{AG}/sprint/{FUTURE}", json={"state": "active", **dates})
    assert r.status_code == 400 and "already active" in r.json()["errorMessages"][0]
    # Close the active sprint, then start the next one.
    closed = jira.post(f"{AG}/sprint/{ACTIVE}", json={"state": "closed"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert closed.json()["completeDate"] == jira.world.now().isoformat(timespec="milliseconds")
    started = jira.post(f"{AG}/sprint/{FUTURE}", json={"state": "active", **dates})
    assert started.status_code == 200 and started.json()["state"] == "active"
    assert started.json()["startDate"] == "2026-01-12T08:00:00.000+00:00"


def test_invalid_state_moves_are_refused(jira):
    assert jira.post(f"{AG}/sprint/{FUTURE}", json={"state": "closed"}).status_code == 400
    assert jira.post(f"{AG}/sprint/{CLOSED}", json={"state": "active"}).status_code == 400
    assert jira.post(f"{AG}/sprint/{ACTIVE}", json={"state": "paused"}).status_code == 400
    r = jira.post(f"{AG}/sprint/{FUTURE}", json={"startDate": "2026-02-01", "endDate": "2026-01-01"})
    assert r.status_code == 400 and "endDate" in r.json()["errors"]


def test_closing_a_sprint_sends_its_open_issues_to_the_backlog(jira):
    jira.post(f"{AG}/sprint/{ACTIVE}", json={"state": "closed"})
    keys = {i["key"] for i in jira.get(f"{AG}/board/1/backlog", params={"maxResults": 100}).json()["issues"]}
    assert "WEB-2" in keys and "WEB-4" not in keys
    assert sprint_field(jira, "WEB-2") == [ACTIVE]  # the closed sprint stays in its history


def test_sprint_issues(jira):
    r = jira.get(f"{AG}/sprint/{FUTURE}/issue", params={"fields": "summary"})
    assert r.status_code == 200
    validate(r.json(), "/rest/agile/1.0/board/{boardId}/issue", doc="agile")  # same SearchResults
    assert {i["key"] for i in r.json()["issues"]} == {"WEB-4", "WEB-12", "WEB-13"}


# --- Moving issues --------------------------------------------------------------------------------


def test_move_to_sprint_leaves_other_open_sprints(jira):
    r = jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": ["WEB-7", "WEB-16"]})
    assert r.status_code == 204 and r.text == ""
    assert sprint_field(jira, "WEB-7") == [FUTURE]
    assert sprint_field(jira, "WEB-16") == [FUTURE]
    keys = {i["key"] for i in jira.get(f"{AG}/sprint/{FUTURE}/issue").json()["issues"]}
    assert {"WEB-7", "WEB-16"} <= keys
    assert ("update", "WEB-7", "sprint", [ACTIVE], [FUTURE]) in changes(jira.world, object_type="issue")
    assert jira.get("/rest/api/3/search/jql", params={"jql": "sprint = 3 AND key = WEB-7"}).json()["issues"]


def test_move_takes_ids_keeps_closed_sprints_and_carries_sub_tasks(jira):
    from simulator.models import Issue

    web2 = Issue.objects.get(world=jira.world, key="WEB-2")
    jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": [str(web2.ext_id)]})
    assert sprint_field(jira, "WEB-2") == [FUTURE]
    assert sprint_field(jira, "WEB-5") == [FUTURE] and sprint_field(jira, "WEB-6") == [FUTURE]
    jira.post(f"{AG}/sprint/{ACTIVE}/issue", json={"issues": ["web-8"]})  # any case
    assert sprint_field(jira, "WEB-8") == [CLOSED, ACTIVE]


def test_moving_into_the_same_sprint_records_nothing(jira):
    r = jira.post(f"{AG}/sprint/{ACTIVE}/issue", json={"issues": ["WEB-7"]})
    assert r.status_code == 204 and changes(jira.world, object_type="issue") == []


def test_move_refusals(jira):
    r = jira.post(f"{AG}/sprint/{CLOSED}/issue", json={"issues": ["WEB-7"]})
    assert r.status_code == 400 and "closed sprint" in r.json()["errorMessages"][0]
    r = jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": [f"WEB-{n}" for n in range(1, 52)]})
    assert r.status_code == 400 and "50" in r.json()["errorMessages"][0]
    r = jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": ["WEB-7", "WEB-999"]})
    assert r.status_code == 400 and "WEB-999" in r.json()["errorMessages"][0]
    assert sprint_field(jira, "WEB-7") == [ACTIVE]  # nothing moved
    assert jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": []}).status_code == 400
    assert jira.post(f"{AG}/sprint/404/issue", json={"issues": ["WEB-7"]}).status_code == 404


def test_move_to_backlog_removes_open_sprints_only(jira):
    jira.post(f"{AG}/sprint/{ACTIVE}/issue", json={"issues": ["WEB-8"]})
    r = jira.post(f"{AG}/backlog/issue", json={"issues": ["WEB-8", "WEB-4"]})
    assert r.status_code == 204 and r.text == ""
    assert sprint_field(jira, "WEB-8") == [CLOSED] and sprint_field(jira, "WEB-4") == []
    keys = {i["key"] for i in jira.get(f"{AG}/board/1/backlog", params={"maxResults": 100}).json()["issues"]}
    assert {"WEB-8", "WEB-4"} <= keys
    assert ("update", "WEB-4", "sprint", [FUTURE], []) in changes(jira.world, object_type="issue")


def test_move_bumps_updated_from_the_world_clock(jira):
    from simulator.handlers.jira_render import jira_time

    jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": ["WEB-7"]})
    moved_at = jira.world.now()
    updated = jira.get("/rest/api/3/issue/WEB-7", params={"fields": "updated"}).json()["fields"]["updated"]
    assert updated == jira_time(moved_at)


@pytest.mark.parametrize("count", [1, 20])
def test_move_queries_do_not_grow_with_the_number_of_issues(jira, count, django_assert_max_num_queries):
    keys = [f"WEB-{n}" for n in range(1, count + 1)]
    jira.get(f"{AG}/board/1")  # warm the world's config cache
    with django_assert_max_num_queries(14):
        r = jira.post(f"{AG}/sprint/{FUTURE}/issue", json={"issues": keys})
    assert r.status_code == 204
