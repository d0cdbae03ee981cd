"""Jira's field catalogue: what ``GET /field``, createmeta and ``expand=names,schema`` show, and
which keys an issue create or edit accepts inside ``fields``."""

SPRINT_FIELD = "customfield_10020"
STORY_POINTS_FIELD = "customfield_10016"


def _system(fid, name, schema, clause_names=None, orderable=True, navigable=True, searchable=True):
    out = {
        "id": fid,
        "key": fid,
        "name": name,
        "custom": False,
        "orderable": orderable,
        "navigable": navigable,
        "searchable": searchable,
        "clauseNames": clause_names if clause_names is not None else [fid],
    }
    if schema:
        out["schema"] = dict(schema, system=fid)
    return out


def _custom(fid, name, schema, custom_type, clause_names):
    number = int(fid.rsplit("_", 1)[1])
    return {
        "id": fid,
        "key": fid,
        "name": name,
        "custom": True,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": [*clause_names, f"cf[{number}]"],
        "schema": dict(schema, custom=custom_type, customId=number),
    }


FIELDS = [
    _system("summary", "Summary", {"type": "string"}),
    _system("description", "Description", {"type": "string"}),
    _system("issuetype", "Issue Type", {"type": "issuetype"}, ["issuetype", "type"]),
    _system("project", "Project", {"type": "project"}),
    _system("status", "Status", {"type": "status"}, orderable=False),
    _system("statusCategory", "Status Category", {"type": "statusCategory"}, orderable=False),
    _system("priority", "Priority", {"type": "priority"}),
    _system("labels", "Labels", {"type": "array", "items": "string"}),
    _system("assignee", "Assignee", {"type": "user"}),
    _system("reporter", "Reporter", {"type": "user"}),
    _system("creator", "Creator", {"type": "user"}, orderable=False),
    _system("created", "Created", {"type": "datetime"}, orderable=False),
    _system("updated", "Updated", {"type": "datetime"}, orderable=False),
    _system("resolution", "Resolution", {"type": "resolution"}),
    _system(
        "resolutiondate", "Resolved", {"type": "datetime"}, ["resolutiondate", "resolved"], orderable=False
    ),
    _system("duedate", "Due date", {"type": "date"}, ["duedate", "due"]),
    _system("components", "Components", {"type": "array", "items": "component"}, ["component"]),
    _system("fixVersions", "Fix versions", {"type": "array", "items": "version"}, ["fixVersion"]),
    _system("issuelinks", "Linked Issues", {"type": "array", "items": "issuelinks"}, ["issueLink"]),
    _system("subtasks", "Sub-tasks", {"type": "array", "items": "issuelinks"}, ["subtasks"], orderable=False),
    _system("parent", "Parent", {"type": "issuelink"}, ["parent"]),
    _system("comment", "Comment", {"type": "comments-page"}, ["comment"]),
    _system("watches", "Watchers", {"type": "watches"}, ["watchers"], orderable=False),
    _system(
        "statuscategorychangedate",
        "Status Category Changed",
        {"type": "datetime"},
        ["statusCategoryChangedDate"],
        orderable=False,
    ),
    _system("issuekey", "Key", None, ["id", "issue", "issuekey", "key"], orderable=False),
    _system("thumbnail", "Images", None, [], orderable=False, searchable=False),
    _custom(
        SPRINT_FIELD,
        "Sprint",
        {"type": "array", "items": "json"},
        "com.pyxis.greenhopper.jira:gh-sprint",
        ["Sprint", "sprint"],
    ),
    _custom(
        STORY_POINTS_FIELD,
        "Story point estimate",
        {"type": "number"},
        "com.pyxis.greenhopper.jira:jsw-story-points",
        ["Story point estimate", "Story Points"],
    ),
]
FIELDS_BY_ID = {f["id"]: f for f in FIELDS}

# What an issue shows by default (``*navigable``) and with ``*all``.
NAVIGABLE = [
    "summary",
    "description",
    "issuetype",
    "project",
    "status",
    "statusCategory",
    "priority",
    "labels",
    "assignee",
    "reporter",
    "creator",
    "created",
    "updated",
    "resolution",
    "resolutiondate",
    "duedate",
    "components",
    "fixVersions",
    "issuelinks",
    "subtasks",
    "parent",
    "watches",
    "statuscategorychangedate",
    SPRINT_FIELD,
    STORY_POINTS_FIELD,
]
ALL = [*NAVIGABLE, "comment"]

# Keys an issue create/edit accepts inside ``fields`` (anything else is refused like Cloud does).
SETTABLE = {
    "summary",
    "description",
    "issuetype",
    "project",
    "priority",
    "labels",
    "assignee",
    "reporter",
    "duedate",
    "components",
    "fixVersions",
    "parent",
    "resolution",
    SPRINT_FIELD,
    STORY_POINTS_FIELD,
}
# Keys that make sense only on create.
CREATE_ONLY = {"project", "issuetype"}


def field_meta(fid, required=False, allowed_values=None):
    """One field of createmeta / editmeta."""
    f = FIELDS_BY_ID[fid]
    ops = ["set", "add", "remove"] if f["schema"]["type"] == "array" else ["set"]
    out = {
        "required": required,
        "schema": f["schema"],
        "name": f["name"],
        "key": fid,
        "fieldId": fid,
        "hasDefaultValue": fid == "priority",
        "operations": ops,
    }
    if allowed_values is not None:
        out["allowedValues"] = allowed_values
    return out
