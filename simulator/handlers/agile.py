"""Jira Software (agile 1.0) handlers: boards, sprints, backlog, and moving issues between them.

Agile ids (boards, sprints) are integers. Issues in agile lists are shown as the platform's v2
search shows them (plain-text descriptions, ``/rest/api/2`` links inside ``fields``), with the
agile ``self`` Cloud gives them. Sprint dates are ISO 8601 with an offset. Errors use Jira's
``{"errorMessages", "errors"}`` shape.
"""

import dataclasses
import datetime as dt

from django.db.models import Q

from simulator.handlers.jira_issue_json import NOT_FOUND, find_issue, issue_json, load_issues, parse_fields
from simulator.handlers.jira_render import avatar_urls
from simulator.jql import JqlError, compile_jql
from simulator.models import Board, Issue, Sprint
from simulator.routing import JIRA, Routes, created, jira_error, no_content
from simulator.world_config import config_for

routes = Routes(api=JIRA)
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


def _sprint_state(sprint):
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


def _agile_id(req, name):
    text = req.path_params[name]
    if not text.isdecimal():
        raise jira_error(400, f"The value '{text}' of '{name}' is not a number.")
    return int(text)


def _board(req):
    board = Board.objects.filter(world=req.world, ext_id=_agile_id(req, "boardId")).first()
    if board is None:
        raise jira_error(404, BOARD_NOT_FOUND)
    return board


def _sprint(req):
    sprints = Sprint.objects.filter(world=req.world, ext_id=_agile_id(req, "sprintId"))
    sprint = sprints.select_related("board").first()
    if sprint is None:
        raise jira_error(404, f"Sprint with id {req.path_params['sprintId']} does not exist.")
    return sprint


def _body(req):
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise jira_error(400, "The request body must be a JSON object.")
    return req.body


def _parse_time(value, name):
    """An ISO 8601 date-time (any offset; none means UTC), or a 400 naming the field."""
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise jira_error(400, errors={name: f"Invalid date format '{value}'. Use ISO 8601."}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _page(req, default_size=50, maximum=1000):
    return req.int_param("startAt", 0), req.int_param("maxResults", default_size, maximum=maximum)


def _as_platform_v2(req):
    """The request as platform v2 sees it, for rendering issues: agile speaks v2's plain text."""
    return dataclasses.replace(req, path_params={**req.path_params, "version": "2"})


def _issue_list(req, issues):
    """``{"expand", "startAt", "maxResults", "total", "issues"}`` of ``issues`` (a queryset of the
    board's or sprint's issues), narrowed by the ``jql`` parameter and paged."""
    try:
        query = compile_jql(req.world, req.param("jql") or "", user=req.user)
    except JqlError as err:
        raise jira_error(400, str(err)) from None
    start, size = _page(req, maximum=1000)
    fields = parse_fields(req.param_list("fields"))
    expand = set(req.param_list("expand"))
    matching = query.apply(issues)
    page = list(load_issues(matching, fields)[start : start + size])
    view = _as_platform_v2(req)
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


def _board_issues(board):
    return Issue.objects.filter(world_id=board.world_id, project_id=board.project_id)


# --- Boards ---------------------------------------------------------------------------------------


@routes.get(
    f"{AGILE}/board",
    operation="getAllBoards",
    summary="Boards, filtered by type, name and project",
    params=["startAt", "maxResults", "type", "name", "projectKeyOrId"],
)
def list_boards(req):
    boards = Board.objects.filter(world=req.world).order_by("ext_id")
    types = req.param_list("type")
    if types:
        boards = boards.filter(type__in=types)
    if req.param("name"):
        boards = boards.filter(name__icontains=req.param("name"))
    if req.param("projectKeyOrId"):
        project = config_for(req.world).project(req.param("projectKeyOrId"))
        if project is None:
            raise jira_error(400, f"No project could be found with key '{req.param('projectKeyOrId')}'.")
        boards = boards.filter(project_id=project.pk)
    start, size = _page(req)
    rows = list(boards[start : start + size + 1])
    values = [board_json(req, b) for b in rows[:size]]
    return {
        "maxResults": size,
        "startAt": start,
        "total": boards.count(),
        "isLast": len(rows) <= size,
        "values": values,
    }


@routes.get(f"{AGILE}/board/{{boardId}}", operation="getBoard", summary="One board")
def get_board(req):
    return board_json(req, _board(req))


@routes.get(
    f"{AGILE}/board/{{boardId}}/configuration",
    operation="getConfiguration",
    summary="A board's columns (with their statuses), estimation and ranking",
)
def get_configuration(req):
    board = _board(req)
    project = config_for(req.world).project_by_pk[board.project_id]
    filter_id = 10000 + board.ext_id
    out = {
        "id": board.ext_id,
        "name": board.name,
        "type": board.type,
        "self": agile_url(req, f"/board/{board.ext_id}/configuration"),
        "location": {"type": "project", "projectKeyOrId": str(project.ext_id)},
        "filter": {"id": str(filter_id), "self": f"{req.base_url}/rest/api/2/filter/{filter_id}"},
        "columnConfig": {
            "columns": [
                {
                    "name": column["name"],
                    "statuses": [
                        {"id": str(sid), "self": f"{req.base_url}/rest/api/2/status/{sid}"}
                        for sid in column.get("status_ids", [])
                    ],
                }
                for column in board.columns
            ],
            "constraintType": "none",
        },
        "estimation": {
            "type": "field",
            "field": {"fieldId": "customfield_10016", "displayName": "Story point estimate"},
        },
        "ranking": {"rankCustomFieldId": 10019},
    }
    if board.type == "kanban":
        out["subQuery"] = {"query": "resolution = EMPTY OR resolution changed after -2w"}
    return out


@routes.get(
    f"{AGILE}/board/{{boardId}}/sprint",
    operation="getAllSprints",
    summary="A board's sprints (closed, active, future); a kanban board has none (400)",
    params=["startAt", "maxResults", "state"],
)
def list_board_sprints(req):
    board = _board(req)
    if board.type != "scrum":
        raise jira_error(400, NO_SPRINTS)
    states = [s.lower() for s in req.param_list("state")]
    bad = [s for s in states if s not in STATES]
    if bad:
        raise jira_error(400, f"The sprint state '{bad[0]}' is not valid. {VALID_STATES}")
    sprints = sorted(
        Sprint.objects.filter(board=board, state__in=states or STATES),
        key=lambda s: (STATES.index(s.state), s.start_date or s.created_date, s.ext_id),
    )
    start, size = _page(req)
    values = [sprint_json(req, s, board.ext_id) for s in sprints[start : start + size]]
    return {
        "maxResults": size,
        "startAt": start,
        "total": len(sprints),
        "isLast": start + size >= len(sprints),
        "values": values,
    }


@routes.get(
    f"{AGILE}/board/{{boardId}}/backlog",
    operation="getIssuesForBacklog",
    summary="The board's issues in no active or future sprint",
    params=ISSUE_LIST_PARAMS,
)
def board_backlog(req):
    board = _board(req)
    issues = _board_issues(board).exclude(sprints__state__in=OPEN_STATES)
    return _issue_list(req, issues)


@routes.get(
    f"{AGILE}/board/{{boardId}}/issue",
    operation="getIssuesForBoard",
    summary="Every issue on the board",
    params=ISSUE_LIST_PARAMS,
)
def board_issues(req):
    return _issue_list(req, _board_issues(_board(req)))


@routes.get(f"{AGILE}/issue/{{issueIdOrKey}}", operation="getAgileIssue", summary="One issue, agile view")
def get_issue(req):
    fields = parse_fields(req.param_list("fields"))
    issue = find_issue(req, req.path_params["issueIdOrKey"], fields)
    shown = issue_json(_as_platform_v2(req), issue, fields, set(req.param_list("expand")))
    shown["self"] = agile_url(req, f"/issue/{issue.ext_id}")
    return shown


# --- Sprints --------------------------------------------------------------------------------------


@routes.post(
    f"{AGILE}/sprint",
    operation="createSprint",
    summary="Create a future sprint on a scrum board",
    body_schema={**SPRINT_BODY, "required": ["name", "originBoardId"]},
)
def create_sprint(req):
    body = _body(req)
    name = str(body.get("name") or "").strip()
    errors = {}
    if not name:
        errors["name"] = "The sprint name must not be empty."
    elif len(name) > 255:
        errors["name"] = "The sprint name is too long (255 characters at most)."
    board_id = body.get("originBoardId")
    board = None
    if board_id in (None, ""):
        errors["originBoardId"] = "The originBoardId is required."
    else:
        board = (
            Board.objects.filter(world=req.world, ext_id=int(board_id)).first()
            if str(board_id).isdecimal()
            else None
        )
        if board is None:
            errors["originBoardId"] = BOARD_NOT_FOUND
        elif board.type != "scrum":
            errors["originBoardId"] = NO_SPRINTS
    start = _parse_time(body.get("startDate"), "startDate")
    end = _parse_time(body.get("endDate"), "endDate")
    if start and end and end < start:
        errors["endDate"] = "The end date must be after the start date."
    if errors:
        raise jira_error(400, errors=errors)
    sprint = Sprint.objects.create(
        world=req.world,
        ext_id=req.world.allocate_ids(),
        board=board,
        name=name,
        state="future",
        goal=str(body.get("goal") or ""),
        start_date=start,
        end_date=end,
        created_date=req.now,
    )
    req.record_create("sprint", sprint.ext_id, {**_sprint_state(sprint), "originBoardId": board.ext_id})
    return created(sprint_json(req, sprint, board.ext_id))


@routes.get(f"{AGILE}/sprint/{{sprintId}}", operation="getSprint", summary="One sprint")
def get_sprint(req):
    sprint = _sprint(req)
    return sprint_json(req, sprint, sprint.board.ext_id)


@routes.put(
    f"{AGILE}/sprint/{{sprintId}}",
    operation="updateSprint",
    summary="Full update: fields left out are cleared; state future->active needs dates, "
    "active->closed completes the sprint",
    body_schema=SPRINT_BODY,
)
def update_sprint(req):
    return _update_sprint(req, partial=False)


@routes.post(
    f"{AGILE}/sprint/{{sprintId}}",
    operation="partiallyUpdateSprint",
    summary="Partial update: only the fields given change",
    body_schema=SPRINT_BODY,
)
def partially_update_sprint(req):
    return _update_sprint(req, partial=True)


def _update_sprint(req, *, partial):
    sprint = _sprint(req)
    body = _body(req)
    before = _sprint_state(sprint)
    errors, messages = {}, []

    def given(key):
        return key in body if partial else True

    if given("name"):
        name = str(body.get("name") or "").strip()
        if not name:
            errors["name"] = "The sprint name must not be empty."
        else:
            sprint.name = name
    if given("goal"):
        sprint.goal = str(body.get("goal") or "")
    # A closed sprint keeps its dates; Cloud refuses to change them.
    if sprint.state != "closed":
        if given("startDate"):
            sprint.start_date = _parse_time(body.get("startDate"), "startDate")
        if given("endDate"):
            sprint.end_date = _parse_time(body.get("endDate"), "endDate")
    state = str(body.get("state") or sprint.state).lower()
    if state not in STATES:
        errors["state"] = f"The sprint state '{state}' is not valid. {VALID_STATES}"
    elif state != sprint.state:
        messages.extend(_change_state(req, sprint, state))
    if sprint.start_date and sprint.end_date and sprint.end_date < sprint.start_date:
        errors["endDate"] = "The end date must be after the start date."
    if sprint.state == "active" and not (sprint.start_date and sprint.end_date):
        messages.append("An active sprint must have a start date and an end date.")
    if errors or messages:
        raise jira_error(400, messages, errors)
    sprint.save()
    req.record_update("sprint", sprint.ext_id, before, _sprint_state(sprint))
    return sprint_json(req, sprint, sprint.board.ext_id)


def _change_state(req, sprint, state):
    """Move ``sprint`` to ``state`` if Jira allows it; return the messages of a refusal."""
    move = (sprint.state, state)
    if move == ("future", "active"):
        if not (sprint.start_date and sprint.end_date):
            return ["A sprint can only be started when it has a start date and an end date."]
        others = Sprint.objects.filter(board_id=sprint.board_id, state="active").exclude(pk=sprint.pk)
        if others.exists():
            return ["Another sprint is already active on this board; complete it first."]
    elif move == ("active", "closed"):
        sprint.complete_date = req.now
    else:
        return [f"A sprint cannot go from {sprint.state} to {state}."]
    sprint.state = state
    return []


@routes.get(
    f"{AGILE}/sprint/{{sprintId}}/issue",
    operation="getIssuesForSprint",
    summary="The issues of a sprint",
    params=ISSUE_LIST_PARAMS,
)
def sprint_issues(req):
    sprint = _sprint(req)
    return _issue_list(req, Issue.objects.filter(world=req.world, sprints=sprint))


@routes.post(
    f"{AGILE}/sprint/{{sprintId}}/issue",
    operation="moveIssuesToSprintAndRank",
    summary="Move issues (with their sub-tasks) into an open sprint; they leave any other open sprint",
    body_schema=ISSUES_BODY,
)
def move_to_sprint(req):
    sprint = _sprint(req)
    if sprint.state == "closed":
        raise jira_error(400, f"Issues cannot be moved to a closed sprint ({sprint.name}).")
    _move(req, _issues_named(req), sprint)
    return no_content()


@routes.post(
    f"{AGILE}/backlog/issue",
    operation="moveIssuesToBacklog",
    summary="Move issues (with their sub-tasks) out of every active and future sprint",
    body_schema=ISSUES_BODY,
)
def move_to_backlog(req):
    _move(req, _issues_named(req), None)
    return no_content()


def _issues_named(req):
    """The issues of ``{"issues": [keys or ids]}`` (at most 50), in the order given."""
    names = _body(req).get("issues")
    if not isinstance(names, list) or not names:
        raise jira_error(400, errors={"issues": "Give the issues to move as a list of keys or ids."})
    if len(names) > MAX_MOVE:
        raise jira_error(400, f"At most {MAX_MOVE} issues can be moved at once; {len(names)} were given.")
    texts = [str(n).strip() for n in names]
    ids = [int(t) for t in texts if t.isdecimal()]
    keys = [t.upper() for t in texts if not t.isdecimal()]
    found = Issue.objects.filter(world=req.world).filter(Q(ext_id__in=ids) | Q(key__in=keys))
    by_name = {}
    for issue in found:
        by_name[str(issue.ext_id)] = by_name[issue.key] = issue
    missing = [t for t in texts if t.upper() not in by_name]
    if missing:
        raise jira_error(400, f"{NOT_FOUND} ({', '.join(missing)})")
    issues = []
    for t in texts:
        if by_name[t.upper()] not in issues:
            issues.append(by_name[t.upper()])
    return issues


def _move(req, issues, sprint):
    """Put ``issues`` and their sub-tasks in ``sprint`` (None: the backlog): out of every other
    active or future sprint, closed ones kept. A fixed number of queries for any number."""
    config = config_for(req.world)
    subtask_types = [pk for pk, t in config.issue_type_by_pk.items() if t.subtask]
    subtasks = Issue.objects.filter(parent__in=[i.pk for i in issues], issue_type_id__in=subtask_types)
    moving = {i.pk: i for i in issues}
    for sub in subtasks.order_by("ext_id"):
        moving.setdefault(sub.pk, sub)
    through = Issue.sprints.through
    memberships = {}
    for row in through.objects.filter(issue_id__in=list(moving)).values(
        "issue_id", "sprint_id", "sprint__ext_id", "sprint__state"
    ):
        memberships.setdefault(row["issue_id"], []).append(row)

    join, changed = [], []
    for pk, issue in moving.items():
        rows = memberships.get(pk, [])
        old = sorted(r["sprint__ext_id"] for r in rows)
        kept = [r for r in rows if r["sprint__state"] == "closed" or (sprint and r["sprint_id"] == sprint.pk)]
        new = sorted({r["sprint__ext_id"] for r in kept} | ({sprint.ext_id} if sprint else set()))
        if sprint and not any(r["sprint_id"] == sprint.pk for r in rows):
            join.append(through(issue_id=pk, sprint_id=sprint.pk))
        if new != old:
            changed.append(pk)
            req.record("update", "issue", issue.key, "sprint", old, new)
    if sprint is None:
        through.objects.filter(issue_id__in=list(moving), sprint__state__in=OPEN_STATES).delete()
    else:
        through.objects.filter(issue_id__in=list(moving), sprint__state__in=OPEN_STATES).exclude(
            sprint_id=sprint.pk
        ).delete()
        through.objects.bulk_create(join)
    if changed:
        Issue.objects.filter(pk__in=changed).update(updated=req.now)
