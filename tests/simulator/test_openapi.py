"""The OpenAPI document of the served subset: generated from the route table, valid, public."""

import re

import pytest
from openapi_spec_validator import validate

from simulator import openapi
from simulator.routes import TABLE
from simulator.routing import JIRA, Route, Routes


def _operation(doc, route):
    template = next(
        p for p in doc["paths"] if re.sub(r"\{\w+\}", "{}", p) == re.sub(r"\{\w+\}", "{}", route.pattern)
    )
    return doc["paths"][template][route.method.lower()]


def test_the_document_is_valid_openapi_3():
    validate(openapi.document())
    assert openapi.document()["openapi"].startswith("3.")


def test_it_lists_every_route_of_the_table():
    doc = openapi.document()
    listed = {
        (method.upper(), re.sub(r"\{\w+\}", "{}", path))
        for path, item in doc["paths"].items()
        for method in item
    }
    assert listed == {(r.method, re.sub(r"\{\w+\}", "{}", r.pattern)) for r in TABLE}
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(TABLE)


def test_an_operation_carries_its_summary_tag_parameters_and_body():
    route = next(r for r in TABLE if r.operation == "addComment")
    op = _operation(openapi.document(), route)
    assert op["operationId"] == "addComment"
    assert op["summary"] == route.summary
    assert op["tags"] == ["jira-platform"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["version"]["in"] == "path"
    assert params["version"]["schema"]["enum"] == ["3", "2", "latest"]
    assert params["issueIdOrKey"]["required"] is True
    assert op["requestBody"]["content"]["application/json"]["schema"] == route.body_schema


def test_query_parameters_are_typed_by_name():
    route = next(r for r in TABLE if r.operation == "getComments")
    params = {p["name"]: p for p in _operation(openapi.document(), route)["parameters"]}
    assert params["startAt"] == {
        "name": "startAt",
        "in": "query",
        "required": False,
        "schema": {"type": "integer"},
    }
    assert params["orderBy"]["schema"] == {"type": "string"}


def test_servers_are_relative_to_a_world_and_auth_is_basic():
    doc = openapi.document()
    assert doc["servers"][0]["url"] == "/sim/{world}"
    assert doc["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
        "description": "email + API token of a user of the world in the URL",
    }
    assert doc["security"] == [{"basicAuth": []}]


def _noop(req):
    return {}


def test_routes_without_a_body_schema_get_a_permissive_one_and_shared_names_are_made_unique():
    table = Routes(api=JIRA)
    table.route("POST", "/rest/agile/1.0/sprint/{sprintId}/issue", operation="moveIssues")(_noop)
    table.append(Route("GET", "/wiki/api/v2/pages/{id}", _noop, "getPage", api="confluence-v2"))
    table.append(Route("GET", "/wiki/rest/api/content/{id}", _noop, "getPage", api="confluence-v1"))
    table.append(Route("DELETE", "/wiki/api/v2/pages/{pageId}", _noop, "deletePage", api="confluence-v2"))
    doc = openapi.build_document(table)
    validate(doc)
    move = doc["paths"]["/rest/agile/1.0/sprint/{sprintId}/issue"]["post"]
    assert move["tags"] == ["jira-agile"]
    assert move["requestBody"] == {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    assert doc["paths"]["/wiki/api/v2/pages/{id}"]["get"]["operationId"] == "confluence-v2.getPage"
    assert doc["paths"]["/wiki/rest/api/content/{id}"]["get"]["operationId"] == "confluence-v1.getPage"
    # One spelling per path template: the delete joins /pages/{id} instead of a second path.
    assert set(doc["paths"]["/wiki/api/v2/pages/{id}"]) == {"get", "delete"}
    assert [t["name"] for t in doc["tags"]] == ["jira-agile", "confluence-v2", "confluence-v1"]


def test_operations_give_compact_tool_docs():
    ops = openapi.operations()
    assert len(ops) == len(TABLE)
    create = next(o for o in ops if o["operation"] == "createIssue")
    assert create["method"] == "POST"
    assert create["path"] == "/rest/api/3/issue"
    assert create["summary"]
    assert isinstance(create["body_example"], dict)
    get = next(o for o in ops if o["operation"] == "getIssue")
    assert "body_example" not in get
    assert next(o for o in openapi.operations(version=None) if o["operation"] == "getIssue")["path"] == (
        "/rest/api/{version}/issue/{issueIdOrKey}"
    )


def test_operations_filter_by_api_family():
    jira = openapi.operations(["jira"])
    assert jira and all(o["path"].startswith("/rest/") for o in jira)
    assert openapi.operations(["confluence-v1", "confluence-v2"]) == [
        o for o in openapi.operations() if o["path"].startswith("/wiki/")
    ]


def test_body_examples_fill_required_properties_with_placeholders():
    schema = {
        "type": "object",
        "required": ["transition"],
        "properties": {
            "transition": {"type": "object", "properties": {"id": {"type": ["string", "integer"]}}},
            "fields": {"type": "object"},
        },
    }
    assert openapi.example_of(schema) == {"transition": {"id": "<id>"}}
    assert openapi.example_of({"type": "object", "example": {"jql": "project = OPS"}}) == {
        "jql": "project = OPS"
    }
    assert openapi.example_of({"type": "array", "items": {"type": "integer"}}) == [0]


@pytest.mark.django_db
def test_the_document_is_served_publicly_as_json(client):
    response = client.get("/sim/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == openapi.document()
