"""Validate simulator responses against Atlassian's official OpenAPI response schemas."""

import functools
import json
import os
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# The published documents live beside the repository (../shared/reference/atlassian).
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "atlassian"
DOCS = {"jira": "jira-platform-v3.openapi.json", "agile": "jira-software-agile.openapi.json"}


def _json_schema(node):
    """OpenAPI 3.0 says ``nullable: true`` where JSON Schema says ``type: [..., "null"]``.

    Atlassian's generator also writes ``additionalProperties: false`` beside an ``anyOf`` without
    ``properties`` (``JqlQueryClause``): read as JSON Schema that forbids every property, which
    OpenAPI tools ignore; it is dropped here so the alternatives decide."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items()}
        if "anyOf" in out and out.get("additionalProperties") is False and "properties" not in out:
            del out["additionalProperties"]
        if out.pop("nullable", False):
            if "type" in out:
                out["type"] = (
                    [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
                )
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


@functools.cache
def _document(name):
    path = REFERENCE / DOCS[name]
    if not path.exists():
        message = f"Atlassian's OpenAPI documents are not at {REFERENCE}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must validate against them)")
        pytest.skip(message)
    return _json_schema(json.loads(path.read_text()))


def response_schema(path, method, status="200", doc="jira"):
    operation = _document(doc)["paths"][path][method.lower()]
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]


def validate(body, path, method="get", status="200", doc="jira"):
    """Raise jsonschema.ValidationError unless ``body`` fits the operation's response schema."""
    document = _document(doc)
    registry = Registry().with_resource(f"urn:{doc}", Resource.from_contents(document, DRAFT202012))
    schema = _rebase(response_schema(path, method, status, doc), doc)
    jsonschema.Draft202012Validator(schema, registry=registry).validate(body)


def _rebase(node, doc):
    if isinstance(node, dict):
        return {k: (f"urn:{doc}{v}" if k == "$ref" else _rebase(v, doc)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v, doc) for v in node]
    return node
