"""Jira Software (agile 1.0): ``PUT /issue/rank`` — move issues before or after another in the
board order (the ``rank`` of simulator.models.Issue; JQL's ``ORDER BY rank`` and the agile issue
lists follow it)."""

from simulator.handlers.agile_common import AGILE, MAX_MOVE, body_dict
from simulator.handlers.jira_issue_json import NOT_FOUND
from simulator.models import Issue
from simulator.routing import JIRA, Routes, jira_error, no_content

routes = Routes(api=JIRA)
RANK_BODY = {
    "type": "object",
    "required": ["issues"],
    "properties": {
        "issues": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_MOVE},
        "rankBeforeIssue": {"type": "string"},
        "rankAfterIssue": {"type": "string"},
        "rankCustomFieldId": {"type": "integer"},
    },
}


def board_order(world):
    """The world's issues in board order: ranked ones by rank, then the others, oldest first."""
    issues = Issue.objects.filter(world=world).only("pk", "ext_id", "key", "rank")
    return sorted(issues, key=lambda i: (i.rank is None, i.rank or 0, i.ext_id))


def _named(order, text, name):
    text = str(text).strip()
    for issue in order:
        if text.upper() == issue.key or text == str(issue.ext_id):
            return issue
    raise jira_error(400, f"{NOT_FOUND} ({text})", {name: f"The issue '{text}' does not exist."})


@routes.put(
    f"{AGILE}/issue/rank",
    operation="rankIssues",
    summary="Rank issues (at most 50, kept in the order given) before or after another issue",
    body_schema=RANK_BODY,
)
def rank_issues(req):
    body = body_dict(req)
    names = body.get("issues")
    if not isinstance(names, list) or not names:
        raise jira_error(400, errors={"issues": "Give the issues to rank as a list of keys or ids."})
    if len(names) > MAX_MOVE:
        raise jira_error(400, f"At most {MAX_MOVE} issues can be ranked at once; {len(names)} were given.")
    before, after = body.get("rankBeforeIssue"), body.get("rankAfterIssue")
    if (before in (None, "")) == (after in (None, "")):
        raise jira_error(400, "Give exactly one of rankBeforeIssue and rankAfterIssue.")
    order = board_order(req.world)
    moving = []
    for name in names:
        issue = _named(order, name, "issues")
        if issue not in moving:
            moving.append(issue)
    target = _named(order, before if before not in (None, "") else after, "rankBeforeIssue")
    if target in moving:
        raise jira_error(400, f"Cannot rank issue {target.key} relative to itself.")
    was = {issue.pk: index for index, issue in enumerate(order)}
    rest = [issue for issue in order if issue not in moving]
    at = rest.index(target) + (0 if before not in (None, "") else 1)
    new_order = rest[:at] + moving + rest[at:]
    changed = []
    for position, issue in enumerate(new_order, start=1):
        if issue.rank != position:
            issue.rank = position
            changed.append(issue)
    Issue.objects.bulk_update(changed, ["rank"])
    for issue in moving:
        now = new_order.index(issue)
        if now != was[issue.pk]:
            direction = "Ranked higher" if now < was[issue.pk] else "Ranked lower"
            req.record("update", "issue", issue.key, "rank", None, direction)
    return no_content()
