"""POST /rest/api/3/jql/parse: syntax trees and errors per query, against the official schema."""

from tests.simulator.schemas import validate

PARSE = "/rest/api/3/jql/parse"


def test_it_gives_the_syntax_tree_of_each_query(jira):
    queries = [
        'project = OPS AND (labels in (backend, "two words") OR assignee = currentUser()) '
        "ORDER BY created DESC",
        "status is not EMPTY",
    ]
    r = jira.post(PARSE, json={"queries": queries}, params={"validation": "strict"})
    assert r.status_code == 200
    body = r.json()
    validate(body, PARSE, "post")
    first, second = body["queries"]
    assert first["query"] == queries[0] and "errors" not in first
    where = first["structure"]["where"]
    assert where["operator"] == "and"
    project, either = where["clauses"]
    assert project == {
        "field": {"name": "project", "encodedName": "project"},
        "operator": "=",
        "operand": {"value": "OPS", "encodedValue": "OPS"},
    }
    labels, assignee = either["clauses"]
    assert labels["operator"] == "in"
    assert labels["operand"]["encodedOperand"] == '(backend, "two words")'
    assert assignee["operand"] == {
        "function": "currentUser",
        "arguments": [],
        "encodedOperand": "currentUser()",
    }
    assert first["structure"]["orderBy"] == {
        "fields": [{"field": {"name": "created", "encodedName": "created"}, "direction": "desc"}]
    }
    assert second["structure"]["where"]["operand"] == {"keyword": "empty"}


def test_it_reports_syntax_errors_and_unknown_values_by_validation_mode(jira):
    queries = ["project = ", "project = NOPE", "nofield = 1"]
    strict = jira.post(PARSE, json={"queries": queries}, params={"validation": "strict"}).json()
    validate(strict, PARSE, "post")
    syntax, value, field = strict["queries"]
    assert "structure" not in syntax and syntax["errors"][0].startswith("Error in the JQL Query:")
    assert value["errors"] == ["The value 'NOPE' does not exist for the field 'project'."]
    assert (
        "does not exist" in field["errors"][0] and field["structure"]["where"]["field"]["name"] == "nofield"
    )
    warn = jira.post(PARSE, json={"queries": queries}, params={"validation": "warn"}).json()
    assert warn["queries"][1]["warnings"] == value["errors"] and "errors" not in warn["queries"][1]
    none = jira.post(PARSE, json={"queries": queries}, params={"validation": "none"}).json()
    assert "errors" in none["queries"][0] and "errors" not in none["queries"][1]


def test_it_refuses_a_body_without_queries_and_an_unknown_mode(jira):
    assert jira.post(PARSE, json={"jql": "x"}, params={"validation": "strict"}).status_code == 400
    r = jira.post(PARSE, json={"queries": ["a = b"]}, params={"validation": "loose"})
    assert r.status_code == 400 and r.json()["errorMessages"]
