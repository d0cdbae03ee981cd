"""The OpenAPI document of what the simulator serves, generated from the route table.

Nothing here is hand-kept: every ``Route`` of ``simulator.routes.TABLE`` (method, path pattern,
operation, summary, API family, declared body schema, query parameter names) becomes one
operation, so a new handler shows up in the document, in the trainer's tool docs and in the
fuzz tests (tests/simulator/test_fuzz.py) as soon as it is registered.

The document is OpenAPI 3.1 because the handlers declare their bodies in plain JSON Schema
(``"type": ["string", "null"]``, ``{}`` for "anything"). Paths are relative to a world's mount,
``/sim/{world}``: Jira under ``/rest/...``, Confluence under ``/wiki/...``.
"""

import functools
import json
import re

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.http import require_safe

from simulator.routing import CONFLUENCE_V1, CONFLUENCE_V2, JIRA, REST_VERSIONS

# The document's families (one tag each). A route's family comes from its API and its path.
JIRA_PLATFORM = "jira-platform"
JIRA_AGILE = "jira-agile"
FAMILIES = {
    JIRA_PLATFORM: "Jira Cloud platform REST API (v3; the same paths under v2 and latest take plain "
    "strings where v3 takes ADF)",
    JIRA_AGILE: "Jira Software agile 1.0: boards, sprints, backlog",
    CONFLUENCE_V2: "Confluence Cloud REST API v2",
    CONFLUENCE_V1: "Confluence classic content API (v1)",
}

# Query parameter types by name; every other query parameter is a string (Atlassian's lists,
# such as fields=summary,status, are comma-separated strings).
_INTEGER_PARAMS = {"startAt", "maxResults", "limit", "start", "depth", "version", "body-format-version"}
_BOOLEAN_PARAMS = {
    "notifyUsers",
    "returnIssue",
    "updateHistory",
    "deleteSubtasks",
    "doHealthCheck",
    "validateQuery",
    "overrideScreenSecurity",
    "overrideEditableFlag",
    "includeInactiveUsers",
    "includeArchived",
    "properties",
}

_ERROR_SCHEMAS = {
    JIRA: {
        "type": "object",
        "description": "Jira's ErrorCollection",
        "properties": {
            "errorMessages": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    CONFLUENCE_V2: {
        "type": "object",
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "title": {"type": "string"},
                        "detail": {"type": ["string", "null"]},
                    },
                },
            }
        },
    },
    CONFLUENCE_V1: {
        "type": "object",
        "properties": {
            "statusCode": {"type": "integer"},
            "data": {"type": "object"},
            "message": {"type": "string"},
            "reason": {"type": "string"},
        },
    },
}
_ERROR_NAMES = {
    JIRA: "JiraErrorCollection",
    CONFLUENCE_V2: "ConfluenceV2Errors",
    CONFLUENCE_V1: "ConfluenceV1Error",
}
_PARAM = re.compile(r"\{(\w+)\}")


def family_of(route):
    """The document family (tag) of a route: jira-platform, jira-agile, confluence-v2/-v1."""
    if route.api == JIRA:
        return JIRA_AGILE if route.pattern.startswith("/rest/agile/") else JIRA_PLATFORM
    return route.api


def _routes():
    from simulator.routes import TABLE

    return TABLE


# --- The document ---------------------------------------------------------------------------------


def build_document(routes):
    """An OpenAPI 3.1 document (a dict) of ``routes``; ``document()`` is the cached one of TABLE."""
    operation_ids = _operation_ids(routes)
    paths = {}
    spellings = {}  # one spelling per path template: /a/{x} and /a/{y} are the same path
    for route, operation_id in zip(routes, operation_ids, strict=True):
        template = spellings.setdefault(_PARAM.sub("{}", route.pattern), route.pattern)
        item = paths.setdefault(template, {})
        item[route.method.lower()] = _operation(route, operation_id, template)
    families = [f for f in FAMILIES if any(family_of(r) == f for r in routes)]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RLVR Studio Atlassian simulator",
            "version": "1",
            "description": "The subset of Jira Cloud (platform v3/v2, agile 1.0) and Confluence Cloud "
            "(v2, classic v1) that the simulator serves, generated from its route table. Every path is "
            "below a world's mount; authenticate with HTTP Basic: a world user's email and API token "
            "(`python manage.py simworld create --json` prints both).",
        },
        "servers": [
            {
                "url": "/sim/{world}",
                "description": "one sandbox world",
                "variables": {"world": {"default": "world", "description": "the world's slug"}},
            }
        ],
        "security": [{"basicAuth": []}],
        "tags": [{"name": f, "description": FAMILIES[f]} for f in families],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "email + API token of a user of the world in the URL",
                }
            },
            "schemas": {_ERROR_NAMES[api]: schema for api, schema in _ERROR_SCHEMAS.items()},
        },
    }


def _operation_ids(routes):
    """Route operation names, made unique across the document (v1 and v2 may share a name)."""
    counts = {}
    for route in routes:
        counts[route.operation] = counts.get(route.operation, 0) + 1
    seen, out = set(), []
    for route in routes:
        name = route.operation if counts[route.operation] == 1 else f"{family_of(route)}.{route.operation}"
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}.{n}"
        seen.add(unique)
        out.append(unique)
    return out


def _operation(route, operation_id, template):
    family = family_of(route)
    operation = {
        "operationId": operation_id,
        "summary": route.summary or route.operation,
        "tags": [family],
        "parameters": [_path_parameter(name) for name in _PARAM.findall(template)]
        + [_query_parameter(name) for name in route.params],
        "responses": {
            "2XX": {
                "description": "Success: a JSON body, or an empty one (204, and 201 where Cloud sends none)",
                "content": {"application/json": {"schema": {}}},
            },
            "4XX": {
                "description": "An error in the family's shape",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{_ERROR_NAMES[route.api]}"}
                    }
                },
            },
        },
    }
    if route.method in ("POST", "PUT"):
        operation["requestBody"] = {
            "required": route.body_schema is not None,
            "content": {"application/json": {"schema": route.body_schema or {"type": "object"}}},
        }
    return operation


def _path_parameter(name):
    schema = {"type": "string", "enum": list(REST_VERSIONS)} if name == "version" else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(name):
    if name in _INTEGER_PARAMS:
        schema = {"type": "integer"}
    elif name in _BOOLEAN_PARAMS:
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
    return {"name": name, "in": "query", "required": False, "schema": schema}


@functools.cache
def document():
    """The document of the route table, built once per process (the table does not change)."""
    return build_document(_routes())


@functools.cache
def document_json():
    return json.dumps(document(), indent=1).encode()


@login_not_required  # public: it documents the API, whose calls need the world's own credentials
@require_safe
def openapi_json(request):
    return HttpResponse(document_json(), content_type="application/json")


# --- Compact tool docs for the trainer -------------------------------------------------------------


def operations(api_families=None, version="3"):
    """The served operations as short dicts for tool docs, in route-table order.

    ``api_families``: names from FAMILIES or a route's API (``"jira"`` = platform and agile);
    None = all. ``version``: what ``{version}`` in Jira platform paths becomes (None keeps it).
    Each dict: method, path, operation, summary, params (query parameter names) and, for routes
    with a body, body_example (a small instance of the route's body schema).
    """
    wanted = set(api_families) if api_families is not None else None
    out = []
    for route in _routes():
        if wanted is not None and not ({family_of(route), route.api} & wanted):
            continue
        path = route.pattern if version is None else route.pattern.replace("{version}", str(version))
        entry = {
            "method": route.method,
            "path": path,
            "operation": route.operation,
            "summary": route.summary or route.operation,
            "params": list(route.params),
        }
        if route.body_schema is not None:
            entry["body_example"] = example_of(route.body_schema)
        out.append(entry)
    return out


def example_of(schema, name=None, depth=0):
    """A small JSON value that fits ``schema``: its own example when it has one, else the required
    properties (all of them when none is required) filled with placeholders such as "<jql>"."""
    if not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return example_of(schema[key][0], name, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        if depth >= 4:
            return {}
        properties = schema.get("properties", {})
        names = schema.get("required") or list(properties)
        return {n: example_of(properties.get(n, {}), n, depth + 1) for n in names}
    if kind == "array":
        return [example_of(schema.get("items", {}), name, depth + 1)] if depth < 4 else []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"<{name or 'value'}>"
