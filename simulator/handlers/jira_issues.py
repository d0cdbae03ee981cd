"""Jira platform: issue create, get, edit, delete and assign."""

import functools

from django.db import connection

from simulator.handlers.jira_fields import ALL, SPRINT_FIELD, STORY_POINTS_FIELD
from simulator.handlers.jira_issue_input import IssueInput, current_values, shown, touched_lists
from simulator.handlers.jira_issue_json import find_issue, issue_json, issue_url, parse_fields
from simulator.models import Comment, Issue, IssueLabel, IssueLink, Project
from simulator.prepared import insert, prepared
from simulator.routing import Routes, created, jira_error, no_content
from simulator.trace import write, write_row
from simulator.world_config import config_for

routes = Routes()
API = "/rest/api/{version}"
ISSUE = f"{API}/issue/{{issueIdOrKey}}"

ISSUE_BODY = {
    "type": "object",
    "properties": {"fields": {"type": "object"}, "update": {"type": "object"}},
    "additionalProperties": True,
}
# Scalar fields and the model attribute each one sets.
ATTRS = {
    "summary": "summary",
    "description": "description",
    "issuetype": "issue_type",
    "priority": "priority",
    "assignee": "assignee",
    "reporter": "reporter",
    "duedate": "due_date",
    "parent": "parent",
    "resolution": "resolution",
    STORY_POINTS_FIELD: "story_points",
}


def body_dict(req):
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise jira_error(400, "The request body must be a JSON object.")
    return req.body


def check_hierarchy(inp, issue_type, parent, project):
    """Sub-tasks sit under standard issues of their project, standard issues under epics."""
    if issue_type is None:
        return
    if parent is None:
        if issue_type.subtask:
            inp.errors["parent"] = "Issue type is a sub-task but parent issue key or id not specified."
        return
    config = inp.config
    parent_level = config.issue_type_by_pk[parent.issue_type_id].hierarchy_level
    wanted = 0 if issue_type.subtask else issue_type.hierarchy_level + 1
    if parent_level != wanted or (issue_type.subtask and parent.project_id != project.pk):
        inp.errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."


# --- Create ---------------------------------------------------------------------------------------


@routes.post(f"{API}/issue", operation="createIssue", summary="Create an issue", body_schema=ISSUE_BODY)
def create_issue(req):
    body = body_dict(req)
    fields = body.get("fields") or {}
    config = config_for(req.world)
    project = None
    if isinstance(fields, dict) and "project" in fields:
        ref = IssueInput(req, None)._ref(fields["project"])
        project = config.project(ref) if ref else None
    inp = IssueInput(req, project, creating=True).read(fields, body.get("update"))
    if project is None:
        inp.errors["project"] = "Specify a valid project ID or key"
    if "summary" not in inp.values and "summary" not in inp.errors:
        inp.errors["summary"] = "You must specify a summary of the issue."
    if "issuetype" not in inp.values and "issuetype" not in inp.errors:
        inp.errors["issuetype"] = "Specify an issue type"
    values = inp.values
    if not inp.errors:
        check_hierarchy(inp, values["issuetype"], values.get("parent"), project)
    inp.raise_errors()

    number = _next_number(project)
    issue = Issue(
        world=req.world,
        ext_id=req.world.allocate_ids(),
        project=project,
        number=number,
        key=f"{project.key}-{number}",
        status=config.status_by_pk[project.workflow.initial_status_id],
        priority=config.default_priority(),
        reporter=req.user,
        creator=req.user,
        created=req.now,
        updated=req.now,
        status_category_changed=req.now,
    )
    for fid, attr in ATTRS.items():
        if fid in values:
            setattr(issue, attr, values[fid])
    insert(issue)
    _save_lists(issue, values, {})
    add_comments(req, issue, inp.comments)
    add_links(req, issue, inp.links)
    req.record_create(
        "issue",
        issue.key,
        {
            "summary": issue.summary,
            "issuetype": issue.issue_type.name,
            "status": issue.status.name,
            "priority": shown("priority", issue.priority),
            "assignee": shown("assignee", issue.assignee),
            "reporter": shown("reporter", issue.reporter),
            **{fid: shown(fid, v) for fid, v in values.items() if fid not in ATTRS or fid == "description"},
        },
    )
    return created({"id": str(issue.ext_id), "key": issue.key, "self": issue_url(req, issue)})


def _next_number(project):
    # Jira never reuses an issue number, so the counter lives on the project row; one statement
    # takes the next one (UPDATE ... RETURNING: PostgreSQL, and SQLite since 3.35).
    table = Project._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            prepared(
                f"UPDATE {table} SET next_issue_number = next_issue_number + 1 "  # noqa: S608
                "WHERE id = %s RETURNING next_issue_number"
            ),
            [project.pk],
        )
        return cursor.fetchone()[0] - 1


def _save_lists(issue, values, before):
    """Write labels, components, versions and the sprint; only what changed."""
    if "labels" in values and values["labels"] != before.get("labels"):
        _save_labels(issue, values["labels"], getattr(issue, "label_rows", []))
    if "components" in values and values["components"] != before.get("components"):
        issue.components.set(values["components"])
    if "fixVersions" in values and values["fixVersions"] != before.get("fixVersions"):
        issue.fix_versions.set(values["fixVersions"])
    if SPRINT_FIELD in values:
        # Setting the Sprint field moves the issue out of its other open sprints.
        keep = [s for s in getattr(issue, "sprint_list", []) if s.state == "closed"]
        issue.sprints.set(keep + ([values[SPRINT_FIELD]] if values[SPRINT_FIELD] else []))


def _save_labels(issue, names, rows):
    """Labels ``names`` in this order, the issue's (position, name) ``rows`` before: an append or a
    removal touches only those labels, anything else rewrites the list."""
    old = [name for _, name in rows]
    kept = [name for name in old if name in names]
    gone = [name for name in old if name not in names]
    if names[: len(kept)] == kept:
        start = max((position for position, _ in rows), default=-1) + 1
        added = names[len(kept) :]
    else:
        gone, start, added = old, 0, names
    if connection.vendor == "postgresql":
        # Fixed SQL whatever the number of labels (arrays), held for the trace statement.
        table = IssueLabel._meta.db_table
        if gone:
            write(table, f"DELETE FROM {table} WHERE issue_id = %s AND name = ANY(%s)", [issue.pk, gone])  # noqa: S608
        if added:
            write(table, _LABELS_INSERT, [issue.world_id, issue.pk, start, added])
        return
    if gone:
        IssueLabel.objects.filter(issue=issue, name__in=gone).delete()
    if added:
        IssueLabel.objects.bulk_create(
            IssueLabel(world_id=issue.world_id, issue=issue, name=name, position=start + n)
            for n, name in enumerate(added)
        )


# The labels in order, positions from the given start (rows and ids in the array's order).
_LABELS_INSERT = (
    f"INSERT INTO {IssueLabel._meta.db_table} (world_id, issue_id, name, position) "  # noqa: S608
    "SELECT %s, %s, t.name, %s + t.n - 1 FROM unnest(CAST(%s AS text[])) WITH ORDINALITY AS t(name, n) "
    "ORDER BY t.n"
)


def add_comments(req, issue, bodies):
    """Add a comment per body (None: skipped); returns the new Comment rows."""
    made = []
    for body in bodies:
        if body is None:
            continue
        comment = Comment(
            world=req.world,
            ext_id=req.world.allocate_ids(),
            issue=issue,
            author=req.user,
            update_author=req.user,
            body=body,
            created=req.now,
            updated=req.now,
        )
        write_row(comment)  # held for the trace statement: nothing needs its primary key
        req.record_create("comment", comment.ext_id, {"issue": issue.key, "body": shown("comment", body)})
        made.append(comment)
    return made


def add_links(req, issue, links):
    """``update.issuelinks`` add: ``{"type", "outwardIssue"}`` = this issue -> other."""
    from simulator.handlers.jira_links import create_link, link_type_of

    for spec in links:
        if not isinstance(spec, dict):
            raise jira_error(400, "Invalid issue link.")
        link_type = link_type_of(req, spec.get("type"))
        if "outwardIssue" in spec:
            other = find_issue(req, _key_of(spec["outwardIssue"]))
            create_link(req, link_type, issue, other)
        elif "inwardIssue" in spec:
            other = find_issue(req, _key_of(spec["inwardIssue"]))
            create_link(req, link_type, other, issue)
        else:
            raise jira_error(400, "An issue link needs an inwardIssue or an outwardIssue.")


def _key_of(ref):
    if isinstance(ref, dict):
        return ref.get("key") or ref.get("id") or ""
    return str(ref or "")


# --- Get ------------------------------------------------------------------------------------------


@routes.get(ISSUE, operation="getIssue", summary="Get an issue", params=["fields", "expand", "updateHistory"])
def get_issue(req):
    fields = parse_fields(req.param_list("fields"))
    issue = find_issue(req, req.path_params["issueIdOrKey"], fields)
    return issue_json(req, issue, fields, set(req.param_list("expand")))


# --- Edit -----------------------------------------------------------------------------------------


@routes.put(
    ISSUE,
    operation="editIssue",
    summary="Edit an issue: fields to set, update verbs (set/add/remove)",
    body_schema=ISSUE_BODY,
    params=["notifyUsers", "returnIssue", "expand"],
)
def edit_issue(req):
    body = body_dict(req)  # unknown top-level keys (notifyUsers, ...) are ignored, as Cloud does
    lists = touched_lists(body)
    issue = find_issue(req, req.path_params["issueIdOrKey"], lists)
    config = config_for(req.world)
    project = config.project_by_pk[issue.project_id]
    before = current_values(config, issue, lists)
    inp = IssueInput(req, project, before).read(body.get("fields"), body.get("update"))
    if not inp.errors and ("issuetype" in inp.values or "parent" in inp.values):
        issue_type = inp.values.get("issuetype") or config.issue_type_by_pk[issue.issue_type_id]
        parent = inp.values["parent"] if "parent" in inp.values else issue.parent  # noqa: SIM401 - lazy
        check_hierarchy(inp, issue_type, parent, project)
    inp.raise_errors()
    apply_values(req, issue, inp.values, before)
    add_comments(req, issue, inp.comments)
    add_links(req, issue, inp.links)
    if req.bool_param("returnIssue"):
        fields = parse_fields([], default=ALL)
        fresh = find_issue(req, str(issue.ext_id), fields)
        return issue_json(req, fresh, fields, set(req.param_list("expand")))
    return no_content()


def apply_values(req, issue, values, before=None, *, save=True):
    """Write parsed values to the issue and log what changed; bump ``updated`` if anything did."""
    before = before or {}
    changed = False
    for fid, attr in ATTRS.items():
        if fid not in values:
            continue
        new = values[fid]
        if attr in FOREIGN_KEYS:
            old_id = getattr(issue, f"{attr}_id")
            if old_id == (new.pk if new is not None else None):
                continue
            old = _related(req, attr, old_id)
        else:
            old = getattr(issue, attr)
            if old == new:
                continue
        req.record("update", "issue", issue.key, fid, shown(fid, old), shown(fid, new))
        setattr(issue, attr, new)
        changed = True
    for fid in ("labels", "components", "fixVersions"):
        if fid in values and values[fid] != before.get(fid):
            req.record(
                "update", "issue", issue.key, fid, shown(fid, before.get(fid)), shown(fid, values[fid])
            )
            changed = True
    if SPRINT_FIELD in values:
        old = [s.ext_id for s in issue.sprint_list]
        req.record("update", "issue", issue.key, "sprint", old, shown(SPRINT_FIELD, values[SPRINT_FIELD]))
        changed = True
    _save_lists(issue, values, before)
    if changed:
        issue.updated = req.now
        if save:
            save_columns(issue, [*{ATTNAMES[fid] for fid in ATTRS if fid in values}, "updated"])
    return changed


FOREIGN_KEYS = {"issue_type", "priority", "assignee", "reporter", "resolution", "parent"}
# The issue's columns that edits write, by field id.
ATTNAMES = {fid: f"{attr}_id" if attr in FOREIGN_KEYS else attr for fid, attr in ATTRS.items()}


@functools.cache
def _update_sql(vendor, attnames):
    qn = connection.ops.quote_name
    columns = ", ".join(f"{qn(Issue._meta.get_field(a).column)} = %s" for a in attnames)
    return f"UPDATE {qn(Issue._meta.db_table)} SET {columns} WHERE id = %s"  # noqa: S608


def save_columns(issue, attnames):
    """UPDATE only ``attnames`` of the issue, with SQL built once per set of columns (what
    ``save(update_fields=...)`` does, without building the query each time); held for the call's
    trace statement where it can be (simulator.trace.write)."""
    attnames = tuple(sorted(set(attnames)))
    fields = [Issue._meta.get_field(a) for a in attnames]
    values = [f.get_db_prep_save(getattr(issue, f.attname), connection) for f in fields]
    write(Issue._meta.db_table, _update_sql(connection.vendor, attnames), [*values, issue.pk])


def _related(req, attr, pk):
    """The current value of a foreign key, from the world's configuration where it lives."""
    if pk is None:
        return None
    config = config_for(req.world)
    if attr == "parent":
        return Issue.objects.only("key").get(pk=pk)
    lookup = {
        "issue_type": config.issue_type_by_pk,
        "priority": config.priority_by_pk,
        "assignee": config.user_by_pk,
        "reporter": config.user_by_pk,
        "resolution": config.resolution_by_pk,
    }[attr]
    return lookup.get(pk)


# --- Delete ---------------------------------------------------------------------------------------


@routes.delete(ISSUE, operation="deleteIssue", summary="Delete an issue", params=["deleteSubtasks"])
def delete_issue(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"], ["subtasks"])
    config = config_for(req.world)
    subtasks = [c for c in issue.child_list if config.issue_type_by_pk[c.issue_type_id].subtask]
    if subtasks and not req.bool_param("deleteSubtasks"):
        raise jira_error(
            400, "The issue has subtasks. Set the 'deleteSubtasks' parameter to true to delete them with it."
        )
    # Children that are not sub-tasks (stories of an epic) stay, without a parent.
    Issue.objects.filter(parent=issue).exclude(pk__in=[s.pk for s in subtasks]).update(parent=None)
    for sub in subtasks:
        req.record_delete("issue", sub.key, {"summary": sub.summary})
    req.record_delete("issue", issue.key, {"summary": issue.summary})
    gone = [issue.pk, *(sub.pk for sub in subtasks)]
    IssueLink.objects.filter(world=req.world, inward_issue__in=gone).delete()
    IssueLink.objects.filter(world=req.world, outward_issue__in=gone).delete()
    issue.delete()
    return no_content()


# --- Assign ---------------------------------------------------------------------------------------


@routes.put(
    f"{ISSUE}/assignee",
    operation="assignIssue",
    summary='Assign an issue: {"accountId": id}, null to unassign, "-1" for the project default',
    body_schema={"type": "object", "properties": {"accountId": {"type": ["string", "null"]}}},
)
def assign_issue(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    body = body_dict(req)
    if "accountId" not in body:
        raise jira_error(
            400, [], {"accountId": "Users are assigned by accountId; the body needs 'accountId'."}
        )
    account_id = body["accountId"]
    config = config_for(req.world)
    if account_id is None:
        user = None
    elif account_id == "-1":
        user = config.project_by_pk[issue.project_id].lead
    else:
        user = config.user(account_id)
        if user is None or not user.active:
            raise jira_error(400, [], {"assignee": f"User '{account_id}' cannot be assigned issues."})
    apply_values(req, issue, {"assignee": user})
    return no_content()
