"""An issue as Jira shows it (``GET /issue``, search results, agile issue lists), restricted to
the fields asked for, loaded with a fixed number of queries whatever the number of issues."""

import functools
from dataclasses import dataclass

from django.db import connection

from simulator.adf import adf_to_text
from simulator.handlers import jira_render as render
from simulator.handlers.jira_fields import ALL, FIELDS_BY_ID, NAVIGABLE, SPRINT_FIELD, STORY_POINTS_FIELD
from simulator.models import Comment, Issue, IssueLabel, IssueLink, Sprint, Watcher
from simulator.prepared import prepared, raw_instances
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


# --- Loading ---------------------------------------------------------------------------------------
#
# An issue's list-valued fields (labels, components, fix versions, sprints, watchers, sub-tasks,
# links) come from seven tables. Prefetching them costs a query and a round of model instances
# per table; here they come back in ONE query (a UNION ALL of narrow rows), for any number of
# issues, and land on plain attributes of the Issue:
#
#   label_rows [(position, name)], component_ids, version_ids, sprint_ids, watcher_ids,
#   child_list, outward_links, inward_links [IssueBrief / LinkRow], sprint_list [Sprint],
#   comment_list [Comment]
#
# Sprints (their state and dates change through the agile API) and comments (with their bodies)
# are read by a query of their own, only when the fields ask for them and there are any.


# The pieces of the UNION each field reads. Every piece has the same columns: kind, issue_id,
# six integers and two texts (NULLs typed, since PostgreSQL types a UNION piece by piece).
def _piece(kind, source, issue_id, ints=(), texts=()):
    ints = [*ints, *["CAST(NULL AS BIGINT)"] * (6 - len(ints))]
    texts = [*texts, *["CAST(NULL AS TEXT)"] * (2 - len(texts))]
    columns = ", ".join([f"'{kind}'", issue_id, *ints, *texts])
    return f"SELECT {columns} FROM {source} WHERE {issue_id} {{among}}"  # noqa: S608


_ISSUE = Issue._meta.db_table
_LINK = IssueLink._meta.db_table
_RELATED_SQL = {
    "labels": [_piece("l", IssueLabel._meta.db_table, "issue_id", ["position"], ["name"])],
    "components": [_piece("c", Issue.components.through._meta.db_table, "issue_id", ["component_id", "id"])],
    "fixVersions": [_piece("v", Issue.fix_versions.through._meta.db_table, "issue_id", ["version_id", "id"])],
    SPRINT_FIELD: [_piece("s", Issue.sprints.through._meta.db_table, "issue_id", ["sprint_id", "id"])],
    "watches": [_piece("w", Watcher._meta.db_table, "issue_id", ["user_id", "id"])],
    "subtasks": [
        _piece(
            "k",
            f"{_ISSUE} k",  # an alias of its own: the piece may be correlated to an outer issue row
            "k.parent_id",
            ["k.id", "k.ext_id", "k.status_id", "k.priority_id", "k.issue_type_id"],
            ["k.key", "k.summary"],
        )
    ],
    "issuelinks": [
        # This issue is the link's inward end: it shows the outward issue ("blocks B"), and back.
        _piece(
            kind,
            f"{_LINK} l JOIN {_ISSUE} o ON o.id = l.{other}",
            f"l.{this}",
            ["l.ext_id", "l.type_id", "o.ext_id", "o.status_id", "o.priority_id", "o.issue_type_id"],
            ["o.key", "o.summary"],
        )
        for kind, this, other in (
            ("o", "inward_issue_id", "outward_issue_id"),
            ("i", "outward_issue_id", "inward_issue_id"),
        )
    ],
}


_ID_LISTS = {"c": "component_ids", "v": "version_ids", "s": "sprint_ids", "w": "watcher_ids"}


@dataclass
class IssueBrief:
    """The other end of a link, or a sub-task: what ``issue_brief`` shows."""

    pk: int | None
    ext_id: int
    status_id: int
    priority_id: int | None
    issue_type_id: int
    key: str
    summary: str


@dataclass
class LinkRow:
    ext_id: int
    type_id: int
    other: IssueBrief


def fetch_issues(queryset, fields):
    """The issues of ``queryset`` (already sliced as wanted) with what rendering ``fields`` needs:
    one query for the issues, one for every list-valued field together, and one each for sprints
    and comments when asked for and present."""
    if "parent" in fields:
        queryset = queryset.select_related("parent")
    return with_related(list(queryset), fields)


def with_related(issues, fields, rows=None):
    """``issues`` (a list) with the list-valued fields, sprints and comments ``fields`` need;
    ``rows``: the list fields' rows, when the issue's own read brought them (``_issue_sql``)."""
    wanted = set(fields)
    if not issues:
        return issues
    by_pk = {}
    for issue in issues:
        by_pk[issue.pk] = issue
        issue.label_rows, issue.component_ids, issue.version_ids = [], [], []
        issue.sprint_ids, issue.watcher_ids = [], []
        issue.child_list, issue.outward_links, issue.inward_links = [], [], []
        issue.sprint_list, issue.comment_list = [], []
    pieces = [sql for fid, parts in _RELATED_SQL.items() if fid in wanted for sql in parts]
    if pieces:
        if rows is None:
            rows = _related_rows(by_pk, pieces)
        for kind, issue_id, n1, n2, n3, n4, n5, n6, t1, t2 in rows:
            issue = by_pk[issue_id]
            if kind == "l":
                issue.label_rows.append((n1, t1))
            elif kind in _ID_LISTS:
                getattr(issue, _ID_LISTS[kind]).append((n2, n1))  # (row id, what it points at)
            elif kind == "k":
                issue.child_list.append(IssueBrief(n1, n2, n3, n4, n5, t1, t2))
            else:
                link = LinkRow(n1, n2, IssueBrief(None, n3, n4, n5, n6, t1, t2))
                (issue.outward_links if kind == "o" else issue.inward_links).append(link)
        for issue in issues:
            issue.label_rows.sort()
            for attr in _ID_LISTS.values():  # in the order they were added, as Jira keeps them
                setattr(issue, attr, [pk for _, pk in sorted(getattr(issue, attr))])
            issue.child_list.sort(key=lambda c: c.ext_id)
            issue.outward_links.sort(key=lambda link: link.ext_id)
            issue.inward_links.sort(key=lambda link: link.ext_id)
    sprint_ids = {sid for issue in issues for sid in issue.sprint_ids}
    if sprint_ids:
        sprints = {s.pk: s for s in Sprint.objects.select_related("board").filter(pk__in=sprint_ids)}
        for issue in issues:
            issue.sprint_list = sorted((sprints[sid] for sid in issue.sprint_ids), key=lambda s: s.ext_id)
    if "comment" in wanted:
        for comment in Comment.objects.filter(issue_id__in=list(by_pk)).order_by("created", "ext_id"):
            by_pk[comment.issue_id].comment_list.append(comment)
    return issues


def _related_rows(by_pk, pieces):
    if connection.vendor == "postgresql":
        # One array parameter, so the text depends on the fields alone and is prepared once.
        among, ids = "= ANY(%s)", [list(by_pk)]
    else:
        among, ids = f"IN ({', '.join(['%s'] * len(by_pk))})", list(by_pk)
    sql = " UNION ALL ".join(piece.format(among=among) for piece in pieces)
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), ids * len(pieces))
        return cursor.fetchall()


def _related_fields(fields):
    """The fields of ``fields`` that have rows in the list fields' UNION, in its order."""
    return tuple(fid for fid in _RELATED_SQL if fid in fields)


# PostgreSQL: the list fields' rows as one JSON array beside the issue's columns (the UNION's
# pieces, correlated to the issue), so that an issue and its list fields are one statement.
_RELATED_COLUMNS = ("kind", "issue_id", "n1", "n2", "n3", "n4", "n5", "n6", "t1", "t2")


def related_column(fields, outer):
    """PostgreSQL: the SQL of a column holding, as one JSON array, the rows of the list fields
    ``fields`` need for the issue row whose id is ``outer`` (for ``with_related``'s ``rows``);
    None elsewhere or when the fields need none."""
    related = _related_fields(fields) if connection.vendor == "postgresql" else ()
    return _related_column(related, outer) if related else None


@functools.cache
def _related_column(related, outer="i.id"):
    union = " UNION ALL ".join(
        piece.format(among=f"= {outer}") for fid in related for piece in _RELATED_SQL[fid]
    )
    columns = ", ".join(f"r.{c}" for c in _RELATED_COLUMNS)
    return (
        f"(SELECT json_agg(json_build_array({columns})) FROM ({union}) AS r({', '.join(_RELATED_COLUMNS)}))"  # noqa: S608
    )


class LoadedIssues:
    """``load_issues``'s answer: slice it (``[start:stop]``) or iterate it to run the queries."""

    def __init__(self, queryset, fields):
        self.queryset, self.fields = queryset, fields

    def __getitem__(self, window):
        return fetch_issues(self.queryset[window], self.fields)

    def __iter__(self):
        return iter(fetch_issues(self.queryset, self.fields))

    def first(self):
        found = self[:1]
        return found[0] if found else None


def load_issues(queryset, fields):
    """The issues of ``queryset``, loaded for ``fields`` in a fixed number of queries."""
    return LoadedIssues(queryset, fields)


def find_issue(req, id_or_key, fields=(), queryset=None):
    """The world's issue named by key (any case) or numeric id, loaded for ``fields``; else 404."""
    text = str(id_or_key).strip()
    if queryset is not None:
        qs = queryset.filter(world=req.world)
        qs = qs.filter(ext_id=int(text)) if text.isdecimal() else qs.filter(key=text.upper())
        issue = load_issues(qs, fields).first()
    else:
        related = _related_fields(fields) if connection.vendor == "postgresql" else ()
        issue = _issue_by_key_or_id(req.world, text, "parent" in fields, related)
        if issue is not None:
            with_related([issue], fields, (issue.related_rows or []) if related else None)
    if issue is None:
        raise jira_error(404, NOT_FOUND)
    return issue


# The issue read of nearly every call, as SQL built once (Django's query building costs more than
# the query): the issue row, and its parent's row beside it when the fields show the parent.
_PARENT_SHOWS = {
    *("id", "world_id", "ext_id", "project_id", "key", "summary"),
    *("status_id", "priority_id", "issue_type_id"),
}
_PARENT_COLUMNS = tuple(f.attname for f in Issue._meta.concrete_fields if f.attname in _PARENT_SHOWS)


@functools.cache
def _issue_sql(vendor, by_id, with_parent, related=()):
    qn = connection.ops.quote_name
    table = qn(_ISSUE)
    columns = [f"i.{qn(f.column)}" for f in Issue._meta.concrete_fields]
    if related:
        columns.append(f"{_related_column(related)} AS related_rows")
    join = ""
    if with_parent:
        columns += [f"p.{qn(c)} AS {qn('parent__' + c)}" for c in _PARENT_COLUMNS]
        join = f" LEFT JOIN {table} p ON p.id = i.parent_id"
    column = "ext_id" if by_id else "key"
    return f"SELECT {', '.join(columns)} FROM {table} i{join} WHERE i.world_id = %s AND i.{column} = %s"  # noqa: S608


def _issue_by_key_or_id(world, text, with_parent, related=()):
    """The issue, with the list fields' rows ``related`` needs in ``related_rows`` (PostgreSQL)."""
    by_id = text.isdecimal()
    sql = _issue_sql(connection.vendor, by_id, with_parent, related)
    found = raw_instances(Issue, prepared(sql), [world.pk, int(text) if by_id else text.upper()])
    if not found:
        return None
    issue = found[0]
    if with_parent:
        values = [getattr(issue, f"parent__{c}") for c in _PARENT_COLUMNS]
        # The parent as select_related would give it, its other columns deferred (from_db takes
        # the values in the model's field order, as _PARENT_COLUMNS lists them).
        parent = Issue.from_db(connection.alias, list(_PARENT_COLUMNS), values) if values[0] else None
        issue._state.fields_cache["parent"] = parent
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
        return [name for _, name in issue.label_rows]
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
        components = sorted((config.component_by_pk[pk] for pk in issue.component_ids), key=lambda c: c.name)
        return [render.component_json(req, c) for c in components]
    if fid == "fixVersions":
        versions = sorted((config.version_by_pk[pk] for pk in issue.version_ids), key=lambda v: v.name)
        return [render.version_json(req, v) for v in versions]
    if fid == "issuelinks":
        return _links(req, issue)
    if fid == "subtasks":
        return [
            issue_brief(req, c) for c in issue.child_list if config.issue_type_by_pk[c.issue_type_id].subtask
        ]
    if fid == "parent":
        return issue_brief(req, issue.parent) if issue.parent_id else None
    if fid == "watches":
        return {
            "self": f"{issue_url(req, issue)}/watchers",
            "watchCount": len(issue.watcher_ids),
            "isWatching": req.user.pk in issue.watcher_ids,
        }
    if fid == SPRINT_FIELD:
        return [sprint_json(s) for s in issue.sprint_list] or None
    if fid == STORY_POINTS_FIELD:
        return issue.story_points
    if fid == "comment":
        comments = issue.comment_list
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
        out.append(_link_entry(req, config, link, "outwardIssue", link.other))
    for link in issue.inward_links:
        out.append(_link_entry(req, config, link, "inwardIssue", link.other))
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
    if "changelog" in expand:
        from simulator.handlers.jira_history import changelog_expansion

        out["changelog"] = changelog_expansion(req, issue)
    return out


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")
