"""Jira platform: JQL search, the old offset form (/search) and the Cloud cursor form
(/search/jql, bounded queries only), plus the approximate count."""

import base64
import binascii

from django.db import connection

from simulator.handlers.jira_issue_json import (
    ISSUE_EXPAND,
    issue_json,
    load_issues,
    parse_fields,
    related_column,
    with_related,
)
from simulator.handlers.jira_issues import body_dict
from simulator.jql import JqlError, compile_jql
from simulator.models import Issue
from simulator.routing import Routes, jira_error

routes = Routes()
API = "/rest/api/{version}"
SEARCH_BODY = {
    "type": "object",
    "properties": {
        "jql": {"type": "string"},
        "startAt": {"type": "integer"},
        "nextPageToken": {"type": "string"},
        "maxResults": {"type": "integer"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "expand": {},
    },
}


def _query(req, jql, bounded):
    try:
        return compile_jql(req.world, jql or "", user=req.user, require_bounded=bounded)
    except JqlError as err:
        raise jira_error(400, str(err)) from None


def _inputs(req):
    """jql, fields, expand, maxResults and the page position, from the query or a POST body."""
    if req.method == "POST":
        body = body_dict(req)
        fields = body.get("fields")
        fields = fields if isinstance(fields, list) else ([fields] if isinstance(fields, str) else [])
        expand = body.get("expand") or []
        expand = expand.split(",") if isinstance(expand, str) else list(expand)
        return {
            "jql": body.get("jql"),
            "fields": [str(f) for f in fields],
            "expand": {e.strip() for e in expand},
            "maxResults": body.get("maxResults"),
            "startAt": body.get("startAt"),
            "nextPageToken": body.get("nextPageToken"),
        }
    return {
        "jql": req.param("jql"),
        "fields": req.param_list("fields"),
        "expand": set(req.param_list("expand")),
        "maxResults": req.param("maxResults"),
        "startAt": req.param("startAt"),
        "nextPageToken": req.param("nextPageToken"),
    }


def _int(value, name, default, maximum):
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise jira_error(400, f"The value '{value}' of '{name}' is not a number.") from None
    return max(0, min(number, maximum))


def _page(req, query, start, size, fields, expand):
    if "parent" in fields:  # the parent is joined in by Django's select_related
        issues = list(load_issues(query.apply(Issue.objects.all()), fields)[start : start + size + 1])
    else:
        # On PostgreSQL the issues' list fields come in the same statement, a column of each row.
        related = related_column(fields, f"{connection.ops.quote_name(Issue._meta.db_table)}.id")
        if related is None:
            issues = with_related(query.issue_rows(start, size + 1), fields)
        else:
            issues = query.issue_rows(start, size + 1, {"related_rows": related})
            rows = [row for issue in issues for row in issue.related_rows or ()]
            issues = with_related(issues, fields, rows)
    more = len(issues) > size
    return [issue_json(req, i, fields, expand) for i in issues[:size]], more


@routes.get(f"{API}/search", operation="searchForIssuesUsingJql", summary="JQL search, offset paging (old)")
@routes.post(f"{API}/search", operation="searchForIssuesUsingJqlPost", body_schema=SEARCH_BODY)
def search(req):
    inputs = _inputs(req)
    query = _query(req, inputs["jql"], bounded=False)
    start = _int(inputs["startAt"], "startAt", 0, 10**9)
    size = _int(inputs["maxResults"], "maxResults", 50, 100)
    fields = parse_fields(inputs["fields"])
    issues, _ = _page(req, query, start, size, fields, inputs["expand"])
    return {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": query.apply(Issue.objects.all()).count(),
        "issues": issues,
    }


@routes.get(
    f"{API}/search/jql",
    operation="searchAndReconsileIssuesUsingJql",
    summary="JQL search with nextPageToken; bounded queries only; fields default to id",
    params=["jql", "nextPageToken", "maxResults", "fields", "expand"],
)
@routes.post(f"{API}/search/jql", operation="searchAndReconsileIssuesUsingJqlPost", body_schema=SEARCH_BODY)
def search_jql(req):
    inputs = _inputs(req)
    query = _query(req, inputs["jql"], bounded=True)
    fields = parse_fields(inputs["fields"], default=["id"])
    size = _int(inputs["maxResults"], "maxResults", 50, 5000 if fields == ["id"] else 100)
    start = _decode_token(inputs["nextPageToken"])
    issues, more = _page(req, query, start, size, fields, inputs["expand"])
    out = {"issues": issues, "isLast": not more}
    if more:
        out["nextPageToken"] = _encode_token(start + size)
    if "names" in inputs["expand"] or "schema" in inputs["expand"]:
        out["expand"] = ISSUE_EXPAND
    return out


@routes.post(
    f"{API}/search/approximate-count",
    operation="countIssues",
    summary="How many issues a bounded JQL query matches",
    body_schema={"type": "object", "required": ["jql"], "properties": {"jql": {"type": "string"}}},
)
def approximate_count(req):
    body = body_dict(req)
    query = _query(req, body.get("jql"), bounded=True)
    return {"count": query.apply(Issue.objects.all()).count()}


# The page token is opaque to clients; here it is the offset of the next page.


def _encode_token(offset):
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token):
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, offset = text.partition(":")
        if kind == "offset" and offset.isdecimal():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise jira_error(400, "The nextPageToken is invalid or expired.")
