"""An issue as Jira shows it (``GET /issue``, search results, agile issue lists), restricted to
the fields asked for, loaded with a fixed number of queries whatever the number of issues."""

from django.db.models import Prefetch

from simulator.adf import adf_to_text
from simulator.handlers import jira_render as render
from simulator.handlers.jira_fields import ALL, FIELDS_BY_ID, NAVIGABLE, SPRINT_FIELD, STORY_POINTS_FIELD
from simulator.models import Comment, Issue, IssueLink, Sprint
from simulator.routing import jira_error
from simulator.world_config import config_for

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
NOT_FOUND = "Issue does not exist or you do not have permission to see it."


def parse_fields(items, default=NAVIGABLE):
    """The field ids a ``fields`` parameter asks for, in catalogue order.

    ``*all``, ``*navigable``, ``*none``, ids, and ``-id`` to leave one out; exclusions alone
    apply to ``default``. Unknown names are ignored, as Jira does.
    """
    items = [t for t in items if t]
    if not items:
        return list(default)
    include, exclude, base = [], set(), None
    for item in items:
        if item == "*all":
            base = ALL
        elif item == "*navigable":
            base = base or NAVIGABLE
        elif item == "*none":
            base = base or []
        elif item.startswith("-"):
            exclude.add(item[1:])
        else:
            include.append(item)
    if base is None:
        base = [] if include else list(default)
    chosen = list(base) + [f for f in include if f not in base]
    return [f for f in chosen if f not in exclude and (f in FIELDS_BY_ID or f == "id")]


def load_issues(queryset, fields):
    """Attach what rendering ``fields`` needs: one query per related table, not per issue."""
    wanted = set(fields)
    queryset = queryset.select_related("parent") if "parent" in wanted else queryset
    lookups = []
    if "labels" in wanted:
        lookups.append("labels")
    if "components" in wanted:
        lookups.append("components")
    if "fixVersions" in wanted:
        lookups.append("fix_versions")
    if SPRINT_FIELD in wanted:
        lookups.append(Prefetch("sprints", queryset=Sprint.objects.select_related("board")))
    if "subtasks" in wanted:
        lookups.append(Prefetch("children", queryset=Issue.objects.order_by("ext_id"), to_attr="child_list"))
    if "watches" in wanted:
        lookups.append("watchers")
    if "comment" in wanted:
        lookups.append(Prefetch("comments", queryset=Comment.objects.order_by("created", "ext_id")))
    if "issuelinks" in wanted:
        lookups.append(
            Prefetch(
                "links_as_inward",
                queryset=IssueLink.objects.select_related("outward_issue").order_by("ext_id"),
                to_attr="outward_links",
            )
        )
        lookups.append(
            Prefetch(
                "links_as_outward",
                queryset=IssueLink.objects.select_related("inward_issue").order_by("ext_id"),
                to_attr="inward_links",
            )
        )
    return queryset.prefetch_related(*lookups) if lookups else queryset


def find_issue(req, id_or_key, fields=(), queryset=None):
    """The world's issue named by key (any case) or numeric id, loaded for ``fields``; else 404."""
    text = str(id_or_key).strip()
    qs = (queryset if queryset is not None else Issue.objects).filter(world=req.world)
    qs = qs.filter(ext_id=int(text)) if text.isdigit() else qs.filter(key=text.upper())
    issue = load_issues(qs, fields).first()
    if issue is None:
        raise jira_error(404, NOT_FOUND)
    return issue


def issue_url(req, issue):
    return f"{req.api_url}/issue/{issue.ext_id}"


def issue_brief(req, issue):
    """The other end of a link, a parent or a sub-task: id, key, self and four fields."""
    config = config_for(req.world)
    return {
        "id": str(issue.ext_id),
        "key": issue.key,
        "self": issue_url(req, issue),
        "fields": {
            "summary": issue.summary,
            "status": render.status_json(req, config.status_by_pk[issue.status_id]),
            "priority": render.priority_json(req, config.priority_by_pk.get(issue.priority_id)),
            "issuetype": render.issue_type_json(req, config.issue_type_by_pk[issue.issue_type_id]),
        },
    }


def rich_text(req, adf):
    """ADF for v3, its plain text for v2 and latest."""
    if adf is None:
        return None
    return adf if req.adf else adf_to_text(adf)


def sprint_json(sprint):
    out = {"id": sprint.ext_id, "name": sprint.name, "state": sprint.state, "boardId": sprint.board.ext_id}
    out["goal"] = sprint.goal
    for key, value in (
        ("startDate", sprint.start_date),
        ("endDate", sprint.end_date),
        ("completeDate", sprint.complete_date),
    ):
        if value:
            out[key] = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return out


def comment_json(req, issue, comment):
    config = config_for(req.world)
    return {
        "self": f"{issue_url(req, issue)}/comment/{comment.ext_id}",
        "id": str(comment.ext_id),
        "author": render.user_json(req, config.user_by_pk.get(comment.author_id)),
        "body": rich_text(req, comment.body),
        "updateAuthor": render.user_json(req, config.user_by_pk.get(comment.update_author_id)),
        "created": render.jira_time(comment.created),
        "updated": render.jira_time(comment.updated),
        "jsdPublic": True,
    }


def field_value(req, issue, fid):
    """One field of an issue as Jira shows it."""
    config = config_for(req.world)
    if fid == "summary":
        return issue.summary
    if fid == "description":
        return rich_text(req, issue.description)
    if fid == "issuetype":
        return render.issue_type_json(req, config.issue_type_by_pk[issue.issue_type_id])
    if fid == "project":
        return render.project_ref_json(req, config.project_by_pk[issue.project_id])
    if fid == "status":
        return render.status_json(req, config.status_by_pk[issue.status_id])
    if fid == "statusCategory":
        return render.status_category_json(req, config.status_by_pk[issue.status_id].category)
    if fid == "priority":
        return render.priority_json(req, config.priority_by_pk.get(issue.priority_id))
    if fid == "labels":
        return [label.name for label in issue.labels.all()]
    if fid in ("assignee", "reporter", "creator"):
        return render.user_json(req, config.user_by_pk.get(getattr(issue, f"{fid}_id")))
    if fid in ("created", "updated"):
        return render.jira_time(getattr(issue, fid))
    if fid == "statuscategorychangedate":
        return render.jira_time(issue.status_category_changed)
    if fid == "resolution":
        return render.resolution_json(req, config.resolution_by_pk.get(issue.resolution_id))
    if fid == "resolutiondate":
        return render.jira_time(issue.resolution_date)
    if fid == "duedate":
        return render.jira_date(issue.due_date)
    if fid == "components":
        return [render.component_json(req, c) for c in sorted(issue.components.all(), key=lambda c: c.name)]
    if fid == "fixVersions":
        return [render.version_json(req, v) for v in sorted(issue.fix_versions.all(), key=lambda v: v.name)]
    if fid == "issuelinks":
        return _links(req, issue)
    if fid == "subtasks":
        return [
            issue_brief(req, c) for c in issue.child_list if config.issue_type_by_pk[c.issue_type_id].subtask
        ]
    if fid == "parent":
        return issue_brief(req, issue.parent) if issue.parent_id else None
    if fid == "watches":
        watchers = list(issue.watchers.all())
        return {
            "self": f"{issue_url(req, issue)}/watchers",
            "watchCount": len(watchers),
            "isWatching": any(w.user_id == req.user.pk for w in watchers),
        }
    if fid == SPRINT_FIELD:
        sprints = sorted(issue.sprints.all(), key=lambda s: s.ext_id)
        return [sprint_json(s) for s in sprints] or None
    if fid == STORY_POINTS_FIELD:
        return issue.story_points
    if fid == "comment":
        comments = list(issue.comments.all())
        return {
            "comments": [comment_json(req, issue, c) for c in comments],
            "self": f"{issue_url(req, issue)}/comment",
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        }
    return None


def _links(req, issue):
    config = config_for(req.world)
    out = []
    for link in issue.outward_links:  # this issue is the link's inward end: it "blocks" the other
        out.append(_link_entry(req, config, link, "outwardIssue", link.outward_issue))
    for link in issue.inward_links:
        out.append(_link_entry(req, config, link, "inwardIssue", link.inward_issue))
    return sorted(out, key=lambda entry: int(entry["id"]))


def _link_entry(req, config, link, side, other):
    return {
        "id": str(link.ext_id),
        "self": f"{req.api_url}/issueLink/{link.ext_id}",
        "type": render.link_type_json(req, config.link_type_by_pk[link.type_id]),
        side: issue_brief(req, other),
    }


def issue_json(req, issue, fields, expand=()):
    """The issue with the given field ids (from ``parse_fields``) and expansions."""
    if list(fields) == ["id"]:  # what /search/jql gives when no fields are asked for
        return {"id": str(issue.ext_id)}
    out = {"expand": ISSUE_EXPAND, "id": str(issue.ext_id), "self": issue_url(req, issue), "key": issue.key}
    shown = [f for f in fields if f != "id"]
    out["fields"] = {fid: field_value(req, issue, fid) for fid in shown}
    if "names" in expand:
        out["names"] = {fid: FIELDS_BY_ID[fid]["name"] for fid in shown}
    if "schema" in expand:
        out["schema"] = {fid: FIELDS_BY_ID[fid]["schema"] for fid in shown if "schema" in FIELDS_BY_ID[fid]}
    if "renderedFields" in expand:
        text = adf_to_text(issue.description)
        out["renderedFields"] = {"description": f"<p>{_escape(text)}</p>" if text else None}
    if "transitions" in expand:
        from simulator.handlers.jira_workflow import transitions_json

        out["transitions"] = transitions_json(req, issue, with_fields=False)
    return out


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")
