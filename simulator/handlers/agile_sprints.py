"""Jira Software (agile 1.0): sprints — create, get, update (state changes), their issues — and
moving issues into a sprint or back to the backlog."""

from django.db.models import Q

from simulator.handlers.agile_common import (
    AGILE,
    BOARD_NOT_FOUND,
    ISSUE_LIST_PARAMS,
    ISSUES_BODY,
    MAX_MOVE,
    NO_SPRINTS,
    OPEN_STATES,
    SPRINT_BODY,
    STATES,
    VALID_STATES,
    body_dict,
    find_sprint,
    issue_list,
    parse_time,
    sprint_json,
    sprint_state,
)
from simulator.handlers.jira_issue_json import NOT_FOUND
from simulator.models import Board, Issue, Sprint
from simulator.routing import JIRA, Routes, created, jira_error, no_content
from simulator.world_config import config_for

routes = Routes(api=JIRA)

# --- Sprints --------------------------------------------------------------------------------------


@routes.post(
    f"{AGILE}/sprint",
    operation="createSprint",
    summary="Create a future sprint on a scrum board",
    body_schema={**SPRINT_BODY, "required": ["name", "originBoardId"]},
)
def createfind_sprint(req):
    body = body_dict(req)
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
    start = parse_time(body.get("startDate"), "startDate")
    end = parse_time(body.get("endDate"), "endDate")
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
    req.record_create("sprint", sprint.ext_id, {**sprint_state(sprint), "originBoardId": board.ext_id})
    return created(sprint_json(req, sprint, board.ext_id))


@routes.get(f"{AGILE}/sprint/{{sprintId}}", operation="getSprint", summary="One sprint")
def getfind_sprint(req):
    sprint = find_sprint(req)
    return sprint_json(req, sprint, sprint.board.ext_id)


@routes.put(
    f"{AGILE}/sprint/{{sprintId}}",
    operation="updateSprint",
    summary="Full update: fields left out are cleared; state future->active needs dates, "
    "active->closed completes the sprint",
    body_schema=SPRINT_BODY,
)
def updatefind_sprint(req):
    return _updatefind_sprint(req, partial=False)


@routes.post(
    f"{AGILE}/sprint/{{sprintId}}",
    operation="partiallyUpdateSprint",
    summary="Partial update: only the fields given change",
    body_schema=SPRINT_BODY,
)
def partially_updatefind_sprint(req):
    return _updatefind_sprint(req, partial=True)


def _updatefind_sprint(req, *, partial):
    sprint = find_sprint(req)
    body = body_dict(req)
    before = sprint_state(sprint)
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
            sprint.start_date = parse_time(body.get("startDate"), "startDate")
        if given("endDate"):
            sprint.end_date = parse_time(body.get("endDate"), "endDate")
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
    req.record_update("sprint", sprint.ext_id, before, sprint_state(sprint))
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
    sprint = find_sprint(req)
    return issue_list(req, Issue.objects.filter(world=req.world, sprints=sprint))


@routes.post(
    f"{AGILE}/sprint/{{sprintId}}/issue",
    operation="moveIssuesToSprintAndRank",
    summary="Move issues (with their sub-tasks) into an open sprint; they leave any other open sprint",
    body_schema=ISSUES_BODY,
)
def move_tofind_sprint(req):
    sprint = find_sprint(req)
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
    names = body_dict(req).get("issues")
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
