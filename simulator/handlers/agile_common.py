"""Jira Software (agile 1.0): what the board and sprint handlers share — rendering of boards and
sprints, lookups by the integer agile ids, and the paged issue lists of boards and sprints.

Issues in agile lists are shown as the platform's v2 search shows them (plain-text descriptions,
``/rest/api/2`` links inside ``fields``), with the agile ``self`` Cloud gives them. Sprint dates
are ISO 8601 with an offset.
"""

import dataclasses
import datetime as dt

from django.db.models import F

from simulator.handlers.jira_issue_json import issue_json, load_issues, parse_fields
from simulator.handlers.jira_render import avatar_urls
from simulator.jql import JqlError, compile_jql
from simulator.models import Board, Issue, Sprint
from simulator.routing import jira_error
from simulator.world_config import config_for

AGILE = "/rest/agile/1.0"
STATES = ("closed", "active", "future")  # the order Cloud lists a board's sprints in
OPEN_STATES = ("active", "future")
MAX_MOVE = 50
BOARD_NOT_FOUND = (
    "The requested board cannot be viewed because it either does not exist or you do not have "
    "permission to view it."
)
NO_SPRINTS = "The board does not support sprints"
VALID_STATES = "Valid states: future, active, closed."
ISSUE_LIST_PARAMS = ["startAt", "maxResults", "jql", "fields", "expand"]
SPRINT_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "originBoardId": {"type": "integer"},
        "startDate": {"type": "string"},
        "endDate": {"type": "string"},
        "goal": {"type": "string"},
        "state": {"type": "string", "enum": ["future", "active", "closed"]},
    },
}
ISSUES_BODY = {
    "type": "object",
    "required": ["issues"],
    "properties": {"issues": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_MOVE}},
}


# --- Rendering ------------------------------------------------------------------------------------


def agile_url(req, path):
    return f"{req.base_url}{AGILE}{path}"


def agile_time(value):
    """``2026-01-05T09:00:00.000+00:00``: ISO 8601 with milliseconds and an offset."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds") if value else None


def board_json(req, board):
    project = config_for(req.world).project_by_pk[board.project_id]
    return {
        "id": board.ext_id,
        "self": agile_url(req, f"/board/{board.ext_id}"),
        "name": board.name,
        "type": board.type,
        "location": {
            "projectId": project.ext_id,
            "displayName": f"{project.name} ({project.key})",
            "projectName": project.name,
            "projectKey": project.key,
            "projectTypeKey": project.project_type,
            "avatarURI": avatar_urls(req.base_url, "project", project.ext_id)["48x48"],
            "name": f"{project.name} ({project.key})",
        },
        "isPrivate": False,
    }


def sprint_json(req, sprint, board_ext_id):
    out = {
        "id": sprint.ext_id,
        "self": agile_url(req, f"/sprint/{sprint.ext_id}"),
        "state": sprint.state,
        "name": sprint.name,
    }
    for key, value in (
        ("startDate", sprint.start_date),
        ("endDate", sprint.end_date),
        ("completeDate", sprint.complete_date),
        ("createdDate", sprint.created_date),
    ):
        if value:
            out[key] = agile_time(value)
    out["originBoardId"] = board_ext_id
    out["goal"] = sprint.goal
    return out


def sprint_state(sprint):
    """What the change log keeps of a sprint, by the API's field names."""
    return {
        "name": sprint.name,
        "goal": sprint.goal,
        "state": sprint.state,
        "startDate": agile_time(sprint.start_date),
        "endDate": agile_time(sprint.end_date),
        "completeDate": agile_time(sprint.complete_date),
    }


# --- Lookups --------------------------------------------------------------------------------------


def agile_id(req, name):
    text = req.path_params[name]
    if not text.isdecimal():
        raise jira_error(400, f"The value '{text}' of '{name}' is not a number.")
    return int(text)


def find_board(req):
    board = Board.objects.filter(world=req.world, ext_id=agile_id(req, "boardId")).first()
    if board is None:
        raise jira_error(404, BOARD_NOT_FOUND)
    return board


def find_sprint(req):
    sprints = Sprint.objects.filter(world=req.world, ext_id=agile_id(req, "sprintId"))
    sprint = sprints.select_related("board").first()
    if sprint is None:
        raise jira_error(404, f"Sprint with id {req.path_params['sprintId']} does not exist.")
    return sprint


def body_dict(req):
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise jira_error(400, "The request body must be a JSON object.")
    return req.body


def parse_time(value, name):
    """An ISO 8601 date-time (any offset; none means UTC), or a 400 naming the field."""
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise jira_error(400, errors={name: f"Invalid date format '{value}'. Use ISO 8601."}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def page_params(req, default_size=50, maximum=1000):
    return req.int_param("startAt", 0), req.int_param("maxResults", default_size, maximum=maximum)


def as_platform_v2(req):
    """The request as platform v2 sees it, for rendering issues: agile speaks v2's plain text."""
    return dataclasses.replace(req, path_params={**req.path_params, "version": "2"})


def issue_list(req, issues):
    """``{"expand", "startAt", "maxResults", "total", "issues"}`` of ``issues`` (a queryset of the
    board's or sprint's issues), narrowed by the ``jql`` parameter and paged; in board order
    (rank) unless the query orders them."""
    try:
        query = compile_jql(req.world, req.param("jql") or "", user=req.user)
    except JqlError as err:
        raise jira_error(400, str(err)) from None
    if query.ordering == ("ext_id",):
        query.ordering = (F("rank").asc(nulls_last=True), "ext_id")
    start, size = page_params(req, maximum=1000)
    fields = parse_fields(req.param_list("fields"))
    expand = set(req.param_list("expand"))
    matching = query.apply(issues)
    page = list(load_issues(matching, fields)[start : start + size])
    view = as_platform_v2(req)
    out = []
    for issue in page:
        shown = issue_json(view, issue, fields, expand)
        shown["self"] = agile_url(req, f"/issue/{issue.ext_id}")
        out.append(shown)
    return {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": matching.count(),
        "issues": out,
    }


def board_issue_rows(board):
    return Issue.objects.filter(world_id=board.world_id, project_id=board.project_id)
