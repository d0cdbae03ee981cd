"""Jira platform: comments and watchers of an issue."""

from simulator.handlers import jira_render as render
from simulator.handlers.jira_issue_input import IssueInput, shown
from simulator.handlers.jira_issue_json import comment_json, find_issue, issue_url
from simulator.handlers.jira_issues import add_comments, body_dict, save_columns
from simulator.models import Comment, Watcher
from simulator.routing import Routes, created, jira_error, no_content
from simulator.world_config import config_for

routes = Routes()
COMMENTS = "/rest/api/{version}/issue/{issueIdOrKey}/comment"
COMMENT_BODY = {
    "type": "object",
    "required": ["body"],
    "properties": {"body": {}, "visibility": {"type": "object"}},
}


def _comment_body(req):
    body = body_dict(req)
    inp = IssueInput(req, None)
    text = inp.rich_text("comment", body.get("body"))
    if text is None and "comment" not in inp.errors:
        inp.errors["comment"] = "Comment body can not be empty!"
    inp.raise_errors()
    return text


@routes.get(
    COMMENTS,
    operation="getComments",
    summary="The comments of an issue (paged)",
    params=["startAt", "maxResults", "orderBy"],
)
def list_comments(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    order = req.param("orderBy") or "created"
    if order.lstrip("+-") != "created":
        raise jira_error(400, f"The orderBy value '{order}' is not supported; use created or -created.")
    ordering = ("-created", "-ext_id") if order.startswith("-") else ("created", "ext_id")
    start = req.int_param("startAt", 0)
    size = req.int_param("maxResults", 50, maximum=5000)
    comments = Comment.objects.filter(issue=issue).order_by(*ordering)
    total = comments.count()
    return {
        "startAt": start,
        "maxResults": size,
        "total": total,
        "comments": [comment_json(req, issue, c) for c in comments[start : start + size]],
    }


@routes.post(COMMENTS, operation="addComment", summary="Add a comment", body_schema=COMMENT_BODY)
def add_comment(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    text = _comment_body(req)
    (comment,) = add_comments(req, issue, [text])
    issue.updated = req.now
    save_columns(issue, ["updated"])
    return created(comment_json(req, issue, comment))


def _find_comment(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    ident = req.path_params["id"]
    comment = Comment.objects.filter(issue=issue, ext_id=int(ident)).first() if ident.isdecimal() else None
    if comment is None:
        raise jira_error(404, f"Can not find a comment for the id: {ident}.")
    return issue, comment


@routes.get(f"{COMMENTS}/{{id}}", operation="getComment", summary="One comment")
def get_comment(req):
    issue, comment = _find_comment(req)
    return comment_json(req, issue, comment)


@routes.put(
    f"{COMMENTS}/{{id}}", operation="updateComment", summary="Change a comment", body_schema=COMMENT_BODY
)
def update_comment(req):
    issue, comment = _find_comment(req)
    text = _comment_body(req)
    req.record(
        "update", "comment", comment.ext_id, "body", shown("comment", comment.body), shown("comment", text)
    )
    comment.body = text
    comment.update_author = req.user
    comment.updated = req.now
    comment.save()
    return comment_json(req, issue, comment)


@routes.delete(f"{COMMENTS}/{{id}}", operation="deleteComment", summary="Delete a comment")
def delete_comment(req):
    issue, comment = _find_comment(req)
    req.record_delete("comment", comment.ext_id, {"issue": issue.key, "body": shown("comment", comment.body)})
    comment.delete()
    return no_content()


# --- Watchers -------------------------------------------------------------------------------------

WATCHERS = "/rest/api/{version}/issue/{issueIdOrKey}/watchers"


@routes.get(WATCHERS, operation="getIssueWatchers", summary="Who watches an issue")
def get_watchers(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    config = config_for(req.world)
    users = [config.user_by_pk[w.user_id] for w in Watcher.objects.filter(issue=issue).order_by("pk")]
    return {
        "self": f"{issue_url(req, issue)}/watchers",
        "isWatching": any(u.pk == req.user.pk for u in users),
        "watchCount": len(users),
        "watchers": [render.user_json(req, u) for u in users],
    }


def _watcher(req, account_id):
    user = config_for(req.world).user(account_id) if account_id else req.user
    if user is None:
        raise jira_error(400, [], {"accountId": f"The user with accountId '{account_id}' does not exist."})
    return user


@routes.post(
    WATCHERS,
    operation="addWatcher",
    summary="Add a watcher: the body is a JSON string accountId (none = the caller)",
    body_schema={"type": "string"},
)
def add_watcher(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    if req.body is not None and not isinstance(req.body, str):
        raise jira_error(400, "The body must be a JSON string: the accountId of the user to add.")
    user = _watcher(req, req.body)
    _, made = Watcher.objects.get_or_create(world=req.world, issue=issue, user=user)
    if made:
        req.record("create", "watcher", issue.key, "watcher", None, user.account_id)
    return no_content()


@routes.delete(WATCHERS, operation="removeWatcher", summary="Remove a watcher", params=["accountId"])
def remove_watcher(req):
    issue = find_issue(req, req.path_params["issueIdOrKey"])
    account_id = req.param("accountId")
    if not account_id:
        raise jira_error(400, "The 'accountId' query parameter is required.")
    user = _watcher(req, account_id)
    if Watcher.objects.filter(issue=issue, user=user).delete()[0]:
        req.record("delete", "watcher", issue.key, "watcher", user.account_id, None)
    return no_content()
