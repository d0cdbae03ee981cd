"""Jira platform: workflow transitions of an issue, validated against its project's workflow."""

from simulator.handlers import jira_render as render
from simulator.handlers.jira_fields import field_meta
from simulator.handlers.jira_issue_input import IssueInput, current_values, touched_lists
from simulator.handlers.jira_issue_json import find_issue
from simulator.handlers.jira_issues import ATTNAMES, add_comments, apply_values, body_dict, save_columns
from simulator.routing import Routes, jira_error, no_content
from simulator.world_config import config_for

routes = Routes()
TRANSITIONS = "/rest/api/{version}/issue/{issueIdOrKey}/transitions"


def transitions_json(req, issue, with_fields):
    config = config_for(req.world)
    workflow = config.project_by_pk[issue.project_id].workflow
    status = config.status_by_pk[issue.status_id]
    out = []
    for t in config.transitions_from(workflow, status):
        entry = {
            "id": str(t.transition_id),
            "name": t.name,
            "to": render.status_json(req, config.status_by_pk[t.to_status_id]),
            "hasScreen": bool(t.required_fields),
            "isGlobal": not t.from_status_ids,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            entry["fields"] = {
                fid: field_meta(
                    fid,
                    required=True,
                    allowed_values=[render.resolution_json(req, r) for r in config.resolutions]
                    if fid == "resolution"
                    else None,
                )
                for fid in t.required_fields
            }
        out.append(entry)
    return out


@routes.get(
    TRANSITIONS,
    operation="getTransitions",
    summary="The transitions possible from the issue's current status",
    params=["expand", "transitionId"],
)
def get_transitions(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    with_fields = "transitions.fields" in req.param_list("expand")
    transitions = transitions_json(req, issue, with_fields)
    wanted = req.param("transitionId")
    if wanted:
        transitions = [t for t in transitions if t["id"] == wanted]
    return {"expand": "transitions", "transitions": transitions}


@routes.post(
    TRANSITIONS,
    operation="doTransition",
    summary="Move an issue through its workflow; screen fields such as resolution go in fields",
    body_schema={
        "type": "object",
        "required": ["transition"],
        "properties": {
            "transition": {"type": "object", "properties": {"id": {"type": ["string", "integer"]}}},
            "fields": {"type": "object"},
            "update": {"type": "object"},
        },
    },
)
def do_transition(req):
    body = body_dict(req)
    lists = touched_lists(body)
    issue = find_issue(req, req.path_params["issueIdOrKey"], lists)
    config = config_for(req.world)
    project = config.project_by_pk[issue.project_id]
    transition = _chosen(req, body.get("transition"), config, project, issue)

    before = current_values(config, issue, lists)
    inp = IssueInput(req, project, before).read(body.get("fields"), body.get("update"))
    for fid in transition.required_fields:
        if inp.values.get(fid) is None and fid not in inp.errors:
            inp.errors[fid] = f"Field '{fid}' is required."
    inp.raise_errors()

    old_status = config.status_by_pk[issue.status_id]
    new_status = config.status_by_pk[transition.to_status_id]
    values = dict(inp.values)
    if new_status.category == "done":
        if values.get("resolution") is None and issue.resolution_id is None:
            # As Jira's simplified workflows do: reaching Done resolves the issue.
            values["resolution"] = config.resolution("Done")
    elif "resolution" not in inp.values:
        values["resolution"] = None  # leaving the done category unresolves it
    resolved = values.get("resolution", issue.resolution_id)
    if resolved is None:
        issue.resolution_date = None
    elif issue.resolution_id is None:
        issue.resolution_date = req.now

    if old_status.pk != new_status.pk:
        req.record("update", "issue", issue.key, "status", old_status.name, new_status.name)
        issue.status = new_status
        if old_status.category != new_status.category:
            issue.status_category_changed = req.now
    apply_values(req, issue, values, before, save=False)
    issue.updated = req.now
    written = ("status_id", "status_category_changed", "resolution_date", "updated")
    save_columns(issue, [*written, *(ATTNAMES[fid] for fid in ATTNAMES if fid in values)])
    add_comments(req, issue, inp.comments)
    return no_content()


def _chosen(req, spec, config, project, issue):
    """The transition the body names, by id (int or string) or by name, if the status offers it."""
    if not isinstance(spec, dict) or (spec.get("id") is None and not spec.get("name")):
        raise jira_error(400, "Missing 'transition' identifier: give transition.id (or transition.name).")
    offered = config.transitions_from(project.workflow, config.status_by_pk[issue.status_id])
    if spec.get("id") is not None:
        wanted = str(spec["id"]).strip()
        found = next((t for t in offered if str(t.transition_id) == wanted), None)
        if found is None:
            raise jira_error(400, f"Transition id '{wanted}' is not valid for this issue.")
        return found
    name = str(spec["name"]).strip().lower()
    found = next((t for t in offered if t.name.lower() == name), None)
    if found is None:
        found = next((t for t in offered if config.status_by_pk[t.to_status_id].name.lower() == name), None)
    if found is None:
        raise jira_error(400, f"Transition '{spec['name']}' is not valid for this issue.")
    return found
