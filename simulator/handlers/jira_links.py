"""Jira platform: issue links. {type: Blocks, inwardIssue: A, outwardIssue: B} means A blocks B
(the inward issue gets the outward phrase), as real Cloud does."""

from simulator.handlers import jira_render as render
from simulator.handlers.jira_issue_json import find_issue, issue_brief
from simulator.handlers.jira_issues import add_comments, body_dict
from simulator.models import IssueLink
from simulator.routing import Routes, created, jira_error, no_content
from simulator.world_config import config_for

routes = Routes()
LINKS = "/rest/api/{version}/issueLink"
REF = {"type": "object", "properties": {"id": {"type": "string"}, "key": {"type": "string"}}}


def link_type_of(req, spec):
    ref = None
    if isinstance(spec, dict):
        ref = spec.get("id") or spec.get("name")
    link_type = config_for(req.world).link_type(ref) if ref else None
    if link_type is None:
        raise jira_error(404, f"No issue link type with name '{ref}' found.")
    return link_type


def create_link(req, link_type, inward, outward):
    """Link inward -> outward once; a duplicate is not duplicated."""
    link = IssueLink.objects.filter(type=link_type, inward_issue=inward, outward_issue=outward).first()
    if link is None:
        link = IssueLink.objects.create(
            world=req.world,
            ext_id=req.world.allocate_ids(),
            type=link_type,
            inward_issue=inward,
            outward_issue=outward,
        )
        req.record_create(
            "issuelink",
            link.ext_id,
            {"type": link_type.name, "inwardIssue": inward.key, "outwardIssue": outward.key},
        )
    return link


def _issue_ref(req, spec, side):
    if not isinstance(spec, dict) or not (spec.get("key") or spec.get("id")):
        raise jira_error(400, [], {side: f"Specify the {side} by key or id."})
    return find_issue(req, spec.get("key") or spec.get("id"))


@routes.post(
    LINKS,
    operation="linkIssues",
    summary="Link two issues: inwardIssue A + outwardIssue B with type Blocks = A blocks B",
    body_schema={
        "type": "object",
        "required": ["type", "inwardIssue", "outwardIssue"],
        "properties": {"type": {"type": "object"}, "inwardIssue": REF, "outwardIssue": REF, "comment": {}},
    },
)
def link_issues(req):
    body = body_dict(req)
    link_type = link_type_of(req, body.get("type"))
    inward = _issue_ref(req, body.get("inwardIssue"), "inwardIssue")
    outward = _issue_ref(req, body.get("outwardIssue"), "outwardIssue")
    create_link(req, link_type, inward, outward)
    comment = body.get("comment")
    if isinstance(comment, dict) and comment.get("body"):
        from simulator.handlers.jira_issue_input import IssueInput

        inp = IssueInput(req, None)
        text = inp.rich_text("comment", comment["body"])
        inp.raise_errors()
        add_comments(req, inward, [text])
    return created(None)  # 201 with an empty body, as Cloud answers


def _find_link(req):
    ident = req.path_params["linkId"]
    link = None
    if ident.isdecimal():
        link = (
            IssueLink.objects.select_related("inward_issue", "outward_issue")
            .filter(world=req.world, ext_id=int(ident))
            .first()
        )
    if link is None:
        raise jira_error(404, f"No issue link with id '{ident}' exists.")
    return link


@routes.get(f"{LINKS}/{{linkId}}", operation="getIssueLink", summary="One issue link")
def get_link(req):
    link = _find_link(req)
    return {
        "id": str(link.ext_id),
        "self": f"{req.api_url}/issueLink/{link.ext_id}",
        "type": render.link_type_json(req, config_for(req.world).link_type_by_pk[link.type_id]),
        "inwardIssue": issue_brief(req, link.inward_issue),
        "outwardIssue": issue_brief(req, link.outward_issue),
    }


@routes.delete(f"{LINKS}/{{linkId}}", operation="deleteIssueLink", summary="Delete an issue link")
def delete_link(req):
    link = _find_link(req)
    req.record_delete(
        "issuelink",
        link.ext_id,
        {"inwardIssue": link.inward_issue.key, "outwardIssue": link.outward_issue.key},
    )
    link.delete()
    return no_content()
