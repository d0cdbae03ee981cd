"""Jira platform: an issue's history — ``GET /issue/{key}/changelog`` (a page bean of
``Changelog``) and ``expand=changelog`` on the issue — read from the world's change records
(``simulator.models.Change``): one history per call that changed the issue, its items the
fields that call changed, authored by the caller at the world's time of the call."""

from simulator.handlers import jira_render as render
from simulator.handlers.jira_fields import FIELDS_BY_ID, SPRINT_FIELD
from simulator.handlers.jira_issue_json import find_issue
from simulator.models import Change
from simulator.routing import Routes
from simulator.world_config import config_for

routes = Routes()
API = "/rest/api/{version}"
_FIELD_IDS = {"sprint": SPRINT_FIELD}  # the change log's names where they differ from field ids
_USERS = {"assignee", "reporter"}


def _text(value, fid):
    if isinstance(value, list):
        return (" " if fid == "labels" else ", ").join(str(v) for v in value)
    return str(value)


def _item(config, fid, before, after):
    field_id = _FIELD_IDS.get(fid, fid)
    custom = field_id.startswith("customfield_")
    name = FIELDS_BY_ID[field_id]["name"] if custom and field_id in FIELDS_BY_ID else fid
    item = {"field": name, "fieldtype": "custom" if custom else "jira", "fieldId": field_id}
    # ChangeDetails has no null: a side without a value is left out, as Jira's "from": null.
    for side, value in (("from", before), ("to", after)):
        if value in (None, "", []):
            continue
        if fid in _USERS:
            user = config.user(value)
            item[side], item[f"{side}String"] = str(value), user.display_name if user else str(value)
        else:
            item[f"{side}String"] = _text(value, fid)
    return item


def histories(req, issue):
    """Every history of the issue, oldest first."""
    config = config_for(req.world)
    changes = (
        Change.objects.filter(world=req.world, object_type="issue", object_ref=issue.key, action="update")
        .select_related("call")
        .order_by("id")
    )
    grouped = {}
    for change in changes:
        call = change.call
        entry = grouped.get(change.call_id)
        if entry is None:
            entry = grouped[change.call_id] = {"id": str(call.seq if call else change.pk), "items": []}
            author = config.user_by_pk.get(call.user_id) if call else None
            if author is not None:
                entry["author"] = render.user_json(req, author)
            if call is not None:
                entry["created"] = render.jira_time(call.at)
        entry["items"].append(_item(config, change.field, change.before, change.after))
    return list(grouped.values())


def changelog_expansion(req, issue):
    """What ``expand=changelog`` adds to an issue."""
    found = histories(req, issue)
    return {"startAt": 0, "maxResults": len(found), "total": len(found), "histories": found}


@routes.get(
    f"{API}/issue/{{issueIdOrKey}}/changelog",
    operation="getChangeLogs",
    summary="The issue's change history, oldest first (paged)",
    params=["startAt", "maxResults"],
)
def changelog(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"], ["summary"])
    found = histories(req, issue)
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 100, minimum=1, maximum=100)
    path = f"/issue/{issue.key}/changelog"
    return render.page_bean(req, path, found[start : start + size], start, size, len(found))
