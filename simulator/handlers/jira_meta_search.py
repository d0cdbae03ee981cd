"""Jira platform: the paged searches of the configuration — ``/priority/search`` and
``/statuses/search`` — answered as page beans (``nextPage`` an absolute URL) from the world's
in-memory configuration."""

from urllib.parse import urlencode

from simulator.handlers import jira_render as render
from simulator.routing import Routes, jira_error
from simulator.world_config import config_for

routes = Routes()
API = "/rest/api/{version}"
# The new status API names categories by these constants.
CATEGORY_CONSTANTS = {"new": "TODO", "indeterminate": "IN_PROGRESS", "done": "DONE"}


def _ids(req, name):
    values = req.param_list(name)
    bad = [v for v in values if not v.isdecimal()]
    if bad:
        raise jira_error(400, f"The value '{bad[0]}' of '{name}' is not a number.")
    return set(values)


def _extra(pairs):
    """The filters of a page bean's ``self`` and ``nextPage`` links."""
    kept = [(k, v) for k, v in pairs if v not in (None, "")]
    return "&" + urlencode(kept) if kept else ""


@routes.get(
    f"{API}/priority/search",
    operation="searchPriorities",
    summary="Priorities (paged), by id, name and whether default",
    params=["startAt", "maxResults", "id", "projectId", "priorityName", "onlyDefault", "expand"],
)
def search_priorities(req):
    config = config_for(req.world)
    priorities = config.priorities
    ids = _ids(req, "id")
    if ids:
        priorities = [p for p in priorities if str(p.ext_id) in ids]
    projects = _ids(req, "projectId")
    if projects and not any(str(p.ext_id) in projects for p in config.projects):
        priorities = []  # every project uses the world's one priority scheme
    name = (req.param("priorityName") or "").strip().lower()
    if name:
        priorities = [p for p in priorities if name in p.name.lower()]
    only_default = req.bool_param("onlyDefault")
    if only_default:
        priorities = [p for p in priorities if p.is_default]
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, minimum=1, maximum=100)
    values = [render.priority_json(req, p) for p in priorities[start : start + size]]
    extra = _extra(
        [("id", i) for i in sorted(ids)]
        + [("priorityName", req.param("priorityName")), ("onlyDefault", "true" if only_default else None)]
    )
    return render.page_bean(req, "/priority/search", values, start, size, len(priorities), extra)


def jira_status_json(status):
    """A status as the new status API shows it (``JiraStatus``): category as a constant."""
    return {
        "id": str(status.ext_id),
        "name": status.name,
        "description": status.description,
        "statusCategory": CATEGORY_CONSTANTS[status.category],
        "scope": {"type": "GLOBAL"},
    }


@routes.get(
    f"{API}/statuses/search",
    operation="search",
    summary="Statuses (paged), by project, name and category (TODO, IN_PROGRESS, DONE)",
    params=["projectId", "startAt", "maxResults", "searchString", "statusCategory"],
)
def search_statuses(req):
    config = config_for(req.world)
    statuses = config.statuses
    project_id = (req.param("projectId") or "").strip()
    if project_id:
        project = config.project(project_id) if project_id.isdecimal() else None
        if project is None:
            raise jira_error(400, f"The project with ID '{project_id}' does not exist.")
        statuses = config.workflow_statuses(project.workflow)
    text = (req.param("searchString") or "").strip().lower()
    if text:
        statuses = [s for s in statuses if text in s.name.lower()]
    category = (req.param("statusCategory") or "").strip().upper()
    if category:
        if category not in CATEGORY_CONSTANTS.values():
            raise jira_error(
                400, f"The status category '{category}' is not valid. Valid values: TODO, IN_PROGRESS, DONE."
            )
        statuses = [s for s in statuses if CATEGORY_CONSTANTS[s.category] == category]
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 200, minimum=1, maximum=200)
    values = [jira_status_json(s) for s in statuses[start : start + size]]
    extra = _extra(
        [("projectId", project_id), ("searchString", req.param("searchString")), ("statusCategory", category)]
    )
    return render.page_bean(req, "/statuses/search", values, start, size, len(statuses), extra)
