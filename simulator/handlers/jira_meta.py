"""Jira platform: the instance, users, projects and the configuration lists (fields, priorities,
statuses, issue types, resolutions, link types, create metadata)."""

from simulator.handlers import jira_render as render
from simulator.handlers.jira_fields import FIELDS, SPRINT_FIELD, STORY_POINTS_FIELD, field_meta
from simulator.handlers.jira_issue_json import find_issue
from simulator.routing import Routes, jira_error
from simulator.world_config import config_for

routes = Routes()
API = "/rest/api/{version}"


@routes.get(
    f"{API}/serverInfo", operation="getServerInfo", summary="Get Jira instance info", params=["doHealthCheck"]
)
def server_info(req):
    return {
        "baseUrl": req.base_url,
        "displayUrl": req.base_url,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100282,
        "buildDate": "2025-01-01T00:00:00.000+0000",
        "serverTime": render.jira_time(req.now),
        "scmInfo": "8b0e1d4d6a0f1c2c3f0e5d6b7a8c9d0e1f2a3b4c",
        "serverTitle": "Jira",
        "serverTimeZone": "Etc/UTC",
    }


@routes.get(f"{API}/myself", operation="getCurrentUser", summary="Get the calling user", params=["expand"])
def myself(req):
    out = render.user_json(req, req.user)
    out["locale"] = "en_US"
    out["expand"] = "groups,applicationRoles"
    groups = [{"name": g, "self": f"{req.api_url}/group?groupname={g}"} for g in req.user.groups]
    out["groups"] = {"size": len(groups), "items": groups}
    out["applicationRoles"] = {"size": 1, "items": []}
    return out


# --- Users ----------------------------------------------------------------------------------------


@routes.get(
    f"{API}/user/search",
    operation="findUsers",
    summary="Find users by name or email",
    params=["query", "accountId", "startAt", "maxResults"],
)
def user_search(req):
    query = (req.param("query") or "").strip().lower()
    account_id = req.param("accountId")
    if not query and not account_id and not req.param("property"):
        raise jira_error(400, "One of 'query' or 'accountId' query parameters must be provided.")
    include_active = req.bool_param("includeActive", True)
    include_inactive = req.bool_param("includeInactive", False)
    found = []
    for user in config_for(req.world).users:
        if (user.active and not include_active) or (not user.active and not include_inactive):
            continue
        if account_id and user.account_id != account_id:
            continue
        if query and not _user_matches(user, query):
            continue
        found.append(user)
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, maximum=1000)
    return [render.user_json(req, u) for u in found[start : start + size]]


def _user_matches(user, query):
    name = user.display_name.lower()
    email = user.email.lower()
    return (
        email.startswith(query)
        or query in email
        or name.startswith(query)
        or any(word.startswith(query) for word in name.split())
    )


@routes.get(f"{API}/user", operation="getUser", summary="Get a user by accountId", params=["accountId"])
def user_get(req):
    account_id = req.param("accountId")
    if not account_id:
        raise jira_error(400, "The 'accountId' query parameter needs to be provided.")
    user = config_for(req.world).user(account_id)
    if user is None:
        raise jira_error(
            404, f"Specified user does not exist or you do not have required permissions: {account_id}"
        )
    return render.user_json(req, user)


# --- Projects -------------------------------------------------------------------------------------


def find_project(req, id_or_key):
    project = config_for(req.world).project(id_or_key)
    if project is None:
        what = "id" if str(id_or_key).isdecimal() else "key"
        raise jira_error(404, f"No project could be found with {what} '{id_or_key}'.")
    return project


def _project(req, project, expand=()):
    config = config_for(req.world)
    out = render.project_ref_json(req, project)
    out.update(
        {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            "style": "classic",
            "isPrivate": False,
            "properties": {},
        }
    )
    if "description" in expand:
        out["description"] = project.description
    if "lead" in expand:
        out["lead"] = render.user_json(req, project.lead)
    if "issueTypes" in expand:
        out["issueTypes"] = [render.issue_type_json(req, t) for t in config.issue_types]
    return out


@routes.get(f"{API}/project", operation="getAllProjects", summary="List all projects", params=["expand"])
def project_list(req):
    expand = set(req.param_list("expand"))
    return [_project(req, p, expand) for p in config_for(req.world).projects]


@routes.get(
    f"{API}/project/search",
    operation="searchProjects",
    summary="Search projects (paged)",
    params=["startAt", "maxResults", "keys", "query", "orderBy", "expand"],
)
def project_search(req):
    projects = config_for(req.world).projects
    keys = {k.upper() for k in req.param_list("keys")}
    if keys:
        projects = [p for p in projects if p.key in keys]
    query = (req.param("query") or "").lower()
    if query:
        projects = [p for p in projects if query in p.key.lower() or query in p.name.lower()]
    order = req.param("orderBy") or "key"
    field_name = order.lstrip("+-")
    if field_name in ("name", "key", "id"):
        attr = {"id": "ext_id"}.get(field_name, field_name)
        projects = sorted(projects, key=lambda p: getattr(p, attr), reverse=order.startswith("-"))
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, minimum=1, maximum=100)
    expand = set(req.param_list("expand"))
    values = [_project(req, p, expand) for p in projects[start : start + size]]
    return render.page_bean(req, "/project/search", values, start, size, len(projects))


@routes.get(
    f"{API}/project/{{projectIdOrKey}}",
    operation="getProject",
    summary="Get a project, with its issue types, components and versions",
    params=["expand"],
)
def project_get(req):
    project = find_project(req, req.path_params["projectIdOrKey"])
    config = config_for(req.world)
    out = _project(req, project, {"description", "lead", "issueTypes"})
    out["assigneeType"] = "UNASSIGNED"
    out["components"] = [render.component_json(req, c) for c in config.components_of.get(project.pk, [])]
    out["versions"] = [render.version_json(req, v) for v in config.versions_of.get(project.pk, [])]
    return out


@routes.get(
    f"{API}/project/{{projectIdOrKey}}/statuses",
    operation="getAllStatuses",
    summary="The statuses of a project, per issue type",
)
def project_statuses(req):
    project = find_project(req, req.path_params["projectIdOrKey"])
    config = config_for(req.world)
    statuses = [render.status_json(req, s) for s in config.workflow_statuses(project.workflow)]
    return [
        {
            "self": f"{req.api_url}/issuetype/{t.ext_id}",
            "id": str(t.ext_id),
            "name": t.name,
            "subtask": t.subtask,
            "statuses": statuses,
        }
        for t in config.issue_types
    ]


# --- Create metadata ------------------------------------------------------------------------------


def create_fields(req, project, issue_type):
    """createmeta's fields of one issue type in one project."""
    config = config_for(req.world)
    return {
        "summary": field_meta("summary", required=True),
        "issuetype": field_meta(
            "issuetype", required=True, allowed_values=[render.issue_type_json(req, issue_type)]
        ),
        "project": field_meta(
            "project", required=True, allowed_values=[render.project_ref_json(req, project)]
        ),
        "description": field_meta("description"),
        "priority": field_meta(
            "priority", allowed_values=[render.priority_json(req, p) for p in config.priorities]
        ),
        "labels": field_meta("labels"),
        "assignee": field_meta("assignee"),
        "reporter": field_meta("reporter", required=True),
        "duedate": field_meta("duedate"),
        "components": field_meta(
            "components",
            allowed_values=[render.component_json(req, c) for c in config.components_of.get(project.pk, [])],
        ),
        "fixVersions": field_meta(
            "fixVersions",
            allowed_values=[render.version_json(req, v) for v in config.versions_of.get(project.pk, [])],
        ),
        "parent": field_meta("parent", required=issue_type.subtask),
        STORY_POINTS_FIELD: field_meta(STORY_POINTS_FIELD),
        SPRINT_FIELD: field_meta(SPRINT_FIELD),
    }


@routes.get(
    f"{API}/issue/createmeta/{{projectIdOrKey}}/issuetypes",
    operation="getCreateIssueMetaIssueTypes",
    summary="Issue types that can be created in a project",
    params=["startAt", "maxResults"],
)
def createmeta_issue_types(req):
    find_project(req, req.path_params["projectIdOrKey"])
    types = config_for(req.world).issue_types
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, minimum=1, maximum=200)
    page = types[start : start + size]
    return {
        "issueTypes": [render.issue_type_json(req, t) for t in page],
        "maxResults": size,
        "startAt": start,
        "total": len(types),
    }


@routes.get(
    f"{API}/issue/createmeta/{{projectIdOrKey}}/issuetypes/{{issueTypeId}}",
    operation="getCreateIssueMetaIssueTypeId",
    summary="The fields of an issue type on the create screen",
    params=["startAt", "maxResults"],
)
def createmeta_fields(req):
    project = find_project(req, req.path_params["projectIdOrKey"])
    issue_type = config_for(req.world).issue_type(req.path_params["issueTypeId"])
    if issue_type is None:
        raise jira_error(400, "The issue type ID provided is invalid.")
    fields = list(create_fields(req, project, issue_type).values())
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, minimum=1, maximum=200)
    page = fields[start : start + size]
    return {"fields": page, "results": page, "maxResults": size, "startAt": start, "total": len(fields)}


@routes.get(
    f"{API}/issue/createmeta",
    operation="getCreateIssueMeta",
    summary="Create metadata of projects and issue types (deprecated form)",
    params=["projectKeys", "projectIds", "issuetypeNames", "issuetypeIds", "expand"],
)
def createmeta(req):
    config = config_for(req.world)
    keys = {k.upper() for k in req.param_list("projectKeys")}
    ids = set(req.param_list("projectIds"))
    type_names = {n.lower() for n in req.param_list("issuetypeNames")}
    type_ids = set(req.param_list("issuetypeIds"))
    with_fields = "projects.issuetypes.fields" in req.param_list("expand")
    projects = [p for p in config.projects if (not keys and not ids) or p.key in keys or str(p.ext_id) in ids]
    types = [
        t
        for t in config.issue_types
        if (not type_names and not type_ids) or t.name.lower() in type_names or str(t.ext_id) in type_ids
    ]
    out = []
    for project in projects:
        entry = render.project_ref_json(req, project)
        entry.pop("projectTypeKey")
        entry.pop("simplified")
        entry["issuetypes"] = []
        for t in types:
            item = render.issue_type_json(req, t)
            item["expand"] = "fields"
            if with_fields:
                item["fields"] = create_fields(req, project, t)
            entry["issuetypes"].append(item)
        out.append(entry)
    return {"expand": "projects", "projects": out}


@routes.get(
    f"{API}/issue/{{issueIdOrKey}}/editmeta",
    operation="getEditIssueMeta",
    summary="The fields an edit of the issue may set, with their operations and allowed values",
    params=["overrideScreenSecurity", "overrideEditableFlag"],
)
def editmeta(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"], ["summary"])
    config = config_for(req.world)
    project = config.project_by_pk[issue.project_id]
    issue_type = config.issue_type_by_pk[issue.issue_type_id]
    fields = create_fields(req, project, issue_type)
    del fields["project"]  # an edit cannot move an issue to another project
    fields["issuetype"] = field_meta(
        "issuetype",
        required=True,
        allowed_values=[
            render.issue_type_json(req, t) for t in config.issue_types if t.subtask == issue_type.subtask
        ],
    )
    fields["reporter"]["required"] = False
    fields["resolution"] = field_meta(
        "resolution", allowed_values=[render.resolution_json(req, r) for r in config.resolutions]
    )
    # FieldMetadata (editmeta) has no fieldId, unlike createmeta's fields.
    return {
        "fields": {fid: {k: v for k, v in meta.items() if k != "fieldId"} for fid, meta in fields.items()}
    }


# --- Configuration lists --------------------------------------------------------------------------


@routes.get(f"{API}/field", operation="getFields", summary="All fields, with clauseNames and schema")
def fields(req):
    return FIELDS


@routes.get(f"{API}/priority", operation="getPriorities", summary="All priorities")
def priorities(req):
    return [render.priority_json(req, p) for p in config_for(req.world).priorities]


@routes.get(f"{API}/priority/{{id}}", operation="getPriority", summary="One priority")
def priority_get(req):
    priority = config_for(req.world).priority(req.path_params["id"])
    if priority is None or not req.path_params["id"].isdecimal():
        raise jira_error(404, f"The priority with ID '{req.path_params['id']}' does not exist.")
    return render.priority_json(req, priority)


@routes.get(f"{API}/status", operation="getStatuses", summary="All statuses")
def statuses(req):
    return [render.status_json(req, s) for s in config_for(req.world).statuses]


@routes.get(f"{API}/status/{{idOrName}}", operation="getStatus", summary="One status, by id or name")
def status_get(req):
    status = config_for(req.world).status(req.path_params["idOrName"])
    if status is None:
        raise jira_error(404, f"The status with ID or name '{req.path_params['idOrName']}' does not exist.")
    return render.status_json(req, status)


@routes.get(f"{API}/issuetype", operation="getIssueAllTypes", summary="All issue types")
def issue_types(req):
    return [render.issue_type_json(req, t) for t in config_for(req.world).issue_types]


@routes.get(f"{API}/issuetype/{{id}}", operation="getIssueType", summary="One issue type")
def issue_type_get(req):
    issue_type = config_for(req.world).issue_type(req.path_params["id"])
    if issue_type is None or not req.path_params["id"].isdecimal():
        raise jira_error(404, "The issue type ID provided is invalid.")
    return render.issue_type_json(req, issue_type)


@routes.get(f"{API}/resolution", operation="getResolutions", summary="All resolutions")
def resolutions(req):
    return [render.resolution_json(req, r) for r in config_for(req.world).resolutions]


@routes.get(f"{API}/resolution/{{id}}", operation="getResolution", summary="One resolution")
def resolution_get(req):
    resolution = config_for(req.world).resolution(req.path_params["id"])
    if resolution is None or not req.path_params["id"].isdecimal():
        raise jira_error(404, f"The resolution with ID '{req.path_params['id']}' does not exist.")
    return render.resolution_json(req, resolution)


@routes.get(f"{API}/issueLinkType", operation="getIssueLinkTypes", summary="All issue link types")
def link_types(req):
    return {"issueLinkTypes": [render.link_type_json(req, t) for t in config_for(req.world).link_types]}


@routes.get(f"{API}/issueLinkType/{{issueLinkTypeId}}", operation="getIssueLinkType", summary="One link type")
def link_type_get(req):
    ident = req.path_params["issueLinkTypeId"]
    link_type = config_for(req.world).link_type(ident)
    if link_type is None or not ident.isdecimal():
        raise jira_error(404, f"No issue link type with id '{ident}' exists.")
    return render.link_type_json(req, link_type)
