"""Jira Software (agile 1.0): boards — list, get, configuration, their sprints, backlog and
issues — and the agile view of one issue."""

from simulator.handlers.agile_common import (
    AGILE,
    ISSUE_LIST_PARAMS,
    NO_SPRINTS,
    OPEN_STATES,
    STATES,
    VALID_STATES,
    agile_url,
    as_platform_v2,
    board_issue_rows,
    board_json,
    find_board,
    issue_list,
    page_params,
    sprint_json,
)
from simulator.handlers.jira_issue_json import find_issue, issue_json, parse_fields
from simulator.models import Board, Sprint
from simulator.routing import JIRA, Routes, jira_error
from simulator.world_config import config_for

routes = Routes(api=JIRA)

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
    start, size = page_params(req)
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
def getfind_board(req):
    return board_json(req, find_board(req))


@routes.get(
    f"{AGILE}/board/{{boardId}}/configuration",
    operation="getConfiguration",
    summary="A board's columns (with their statuses), estimation and ranking",
)
def get_configuration(req):
    board = find_board(req)
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
    board = find_board(req)
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
    start, size = page_params(req)
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
    board = find_board(req)
    issues = board_issue_rows(board).exclude(sprints__state__in=OPEN_STATES)
    return issue_list(req, issues)


@routes.get(
    f"{AGILE}/board/{{boardId}}/issue",
    operation="getIssuesForBoard",
    summary="Every issue on the board",
    params=ISSUE_LIST_PARAMS,
)
def board_issues(req):
    return issue_list(req, board_issue_rows(find_board(req)))


# --- Epics ----------------------------------------------------------------------------------------


def _epics(req, board):
    config = config_for(req.world)
    epic_types = [pk for pk, t in config.issue_type_by_pk.items() if t.hierarchy_level == 1]
    return board_issue_rows(board).filter(issue_type_id__in=epic_types)


def epic_json(req, config, epic):
    return {
        "id": epic.ext_id,
        "key": epic.key,
        "self": agile_url(req, f"/epic/{epic.ext_id}"),
        "name": epic.summary,
        "summary": epic.summary,
        "color": {"key": f"color_{epic.ext_id % 14 + 1}"},
        "done": config.status_by_pk[epic.status_id].category == "done",
    }


@routes.get(
    f"{AGILE}/board/{{boardId}}/epic",
    operation="getEpics",
    summary="The epics of the board's project, in board order; done=true|false filters",
    params=["startAt", "maxResults", "done"],
)
def list_epics(req):
    board = find_board(req)
    config = config_for(req.world)
    epics = sorted(_epics(req, board), key=lambda e: (e.rank is None, e.rank or 0, e.ext_id))
    if req.param("done") not in (None, ""):
        done = req.bool_param("done")
        epics = [e for e in epics if (config.status_by_pk[e.status_id].category == "done") == done]
    start, size = page_params(req)
    return {
        "maxResults": size,
        "startAt": start,
        "total": len(epics),
        "isLast": start + size >= len(epics),
        "values": [epic_json(req, config, e) for e in epics[start : start + size]],
    }


@routes.get(
    f"{AGILE}/board/{{boardId}}/epic/{{epicId}}/issue",
    operation="getBoardIssuesForEpic",
    summary="The board's issues whose parent is the epic",
    params=ISSUE_LIST_PARAMS,
)
def epic_issues(req):
    board = find_board(req)
    text = req.path_params["epicId"]
    epic = _epics(req, board).filter(ext_id=int(text)).first() if text.isdecimal() else None
    if epic is None:
        raise jira_error(404, f"The epic {text} does not exist on this board.")
    return issue_list(req, board_issue_rows(board).filter(parent_id=epic.pk))


@routes.get(
    f"{AGILE}/board/{{boardId}}/epic/none/issue",
    operation="getIssuesWithoutEpicForBoard",
    summary="The board's issues that belong to no epic (epics themselves left out)",
    params=ISSUE_LIST_PARAMS,
)
def issues_without_epic(req):
    board = find_board(req)
    epics = _epics(req, board)
    issues = board_issue_rows(board).exclude(pk__in=epics.values("pk")).exclude(parent__in=epics)
    return issue_list(req, issues)


@routes.get(f"{AGILE}/issue/{{issueIdOrKey}}", operation="getAgileIssue", summary="One issue, agile view")
def get_issue(req):
    fields = parse_fields(req.param_list("fields"))
    issue = find_issue(req, req.path_params["issueIdOrKey"], fields)
    shown = issue_json(as_platform_v2(req), issue, fields, set(req.param_list("expand")))
    shown["self"] = agile_url(req, f"/issue/{issue.ext_id}")
    return shown
