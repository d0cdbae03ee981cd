"""Read-only views of a world as plain dicts: what other apps (the verifiers, the suite loader,
the replay pages) may read of the simulator without reaching into its tables.

Every function runs a small, fixed number of queries whatever the world's size, never writes,
and returns JSON-able values. Rich text comes back flattened: ADF as plain text, Confluence
storage format as it is stored (XHTML) and as text.
"""

import html
import re

from simulator.adf import adf_to_text
from simulator.models import (
    ApiCall,
    Change,
    Comment,
    Issue,
    IssueLink,
    Page,
    Project,
    Space,
    Sprint,
    User,
    World,
)

ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


def template_world(seed):
    """The loaded template world of a seed (what episodes fork), or None."""
    return World.objects.filter(seed=seed, is_template=True).order_by("-created_at").first()


# --- People ---------------------------------------------------------------------------------------


def user_state(user):
    if user is None:
        return None
    return {"accountId": user.account_id, "email": user.email, "displayName": user.display_name}


def users(world):
    """Every user of the world, by display name."""
    rows = User.objects.filter(world=world).order_by("display_name", "account_id")
    return [{**user_state(u), "active": u.active, "groups": list(u.groups)} for u in rows]


# --- Jira issues ----------------------------------------------------------------------------------

_ISSUE_RELATED = (
    "project",
    "issue_type",
    "status",
    "priority",
    "assignee",
    "reporter",
    "resolution",
    "parent",
)
_ISSUE_PREFETCH = ("labels", "components", "fix_versions", "sprints")


def _issue_queryset(world):
    return (
        Issue.objects.filter(world=world)
        .select_related(*_ISSUE_RELATED)
        .prefetch_related(*_ISSUE_PREFETCH)
        .order_by("ext_id")
    )


def _by_key_or_id(queryset, key_or_id):
    text = str(key_or_id).strip()
    if text.isdecimal():
        return queryset.filter(ext_id=int(text))
    return queryset.filter(key=text.upper())


def _issue_dict(issue):
    return {
        "id": str(issue.ext_id),
        "key": issue.key,
        "project": issue.project.key,
        "summary": issue.summary,
        "description": adf_to_text(issue.description) or "",
        "type": issue.issue_type.name,
        "subtask": issue.issue_type.subtask,
        "status": issue.status.name,
        "status_category": issue.status.category,
        "priority": issue.priority.name if issue.priority else None,
        "assignee": user_state(issue.assignee),
        "reporter": user_state(issue.reporter),
        "labels": [label.name for label in issue.labels.all()],
        "components": sorted(c.name for c in issue.components.all()),
        "fix_versions": sorted(v.name for v in issue.fix_versions.all()),
        "parent": issue.parent.key if issue.parent else None,
        "sprints": [{"id": s.ext_id, "name": s.name, "state": s.state} for s in issue.sprints.all()],
        "resolution": issue.resolution.name if issue.resolution else None,
        "due_date": issue.due_date.isoformat() if issue.due_date else None,
        "story_points": issue.story_points,
    }


def issue_state(world, key_or_id):
    """One issue as a dict (key, summary, description text, type, status and its category,
    priority, assignee/reporter as {accountId, email, displayName}, labels, components, fix
    versions, parent key, sprints, resolution, due date, story points), or None."""
    issue = _by_key_or_id(_issue_queryset(world), key_or_id).first()
    return _issue_dict(issue) if issue else None


def issue_ids(world, keys):
    """{key: id} for those of ``keys`` that exist (paths may name an issue either way)."""
    keys = [str(k).upper() for k in keys if ISSUE_KEY.match(str(k))]
    if not keys:
        return {}
    rows = Issue.objects.filter(world=world, key__in=keys).values_list("key", "ext_id")
    return {key: str(ext_id) for key, ext_id in rows}


def _user_filter(prefix, value):
    from django.db.models import Q

    text = str(value)
    return (
        Q(**{f"{prefix}__account_id": text})
        | Q(**{f"{prefix}__email__iexact": text})
        | Q(**{f"{prefix}__display_name__iexact": text})
    )


def find_issues(world, *, limit=50, **criteria):
    """Issues matching every criterion, oldest first. Criteria: ``key``, ``project``,
    ``summary`` (exact, any case), ``summary_contains``, ``type``, ``status``, ``assignee`` /
    ``reporter`` (accountId, email or display name; None = unassigned), ``label``, ``parent``,
    ``ids`` (only these issue ids)."""
    qs = _issue_queryset(world)
    for name, value in criteria.items():
        if name == "key":
            qs = _by_key_or_id(qs, value)
        elif name == "project":
            qs = qs.filter(project__key=str(value).upper())
        elif name == "summary":
            qs = qs.filter(summary__iexact=str(value).strip())
        elif name == "summary_contains":
            qs = qs.filter(summary__icontains=str(value))
        elif name == "type":
            qs = qs.filter(issue_type__name__iexact=str(value))
        elif name == "status":
            qs = qs.filter(status__name__iexact=str(value))
        elif name in ("assignee", "reporter"):
            qs = (
                qs.filter(**{f"{name}__isnull": True})
                if value is None
                else qs.filter(_user_filter(name, value))
            )
        elif name == "label":
            qs = qs.filter(labels__name=str(value))
        elif name == "parent":
            qs = qs.filter(parent__key=str(value).upper())
        elif name == "ids":
            qs = qs.filter(ext_id__in=[int(i) for i in value])
        else:
            raise ValueError(f"unknown issue criterion {name!r}")
    return [_issue_dict(issue) for issue in qs.distinct()[:limit]]


def find_issue(world, **criteria):
    """The newest issue matching every criterion of ``find_issues``, or None."""
    found = find_issues(world, **criteria)
    return found[-1] if found else None


def issues_matching(world, jql, user=None):
    """Keys of the issues a JQL query finds, in its order, run as ``user`` (a User or an
    accountId; what currentUser() means); raises simulator.jql.JqlError."""
    from simulator.jql import compile_jql  # the JQL compiler is optional for most selectors

    if isinstance(user, str):
        user = User.objects.filter(world=world, account_id=user).first()
    query = compile_jql(world, jql, user=user)
    return list(query.apply(Issue.objects.filter(world=world)).values_list("key", flat=True))


def comments(world, issue_key):
    """The comments of an issue, oldest first: id, author, text (ADF flattened), mentioned
    accountIds, created."""
    rows = (
        Comment.objects.filter(world=world, issue__key=str(issue_key).upper())
        .select_related("author")
        .order_by("created", "ext_id")
    )
    return [
        {
            "id": str(c.ext_id),
            "author": user_state(c.author),
            "text": adf_to_text(c.body) or "",
            "mentions": mentions(c.body),
            "created": c.created.isoformat(),
        }
        for c in rows
    ]


_WIKI_MENTION = re.compile(r"\[~accountid:([^\]]+)\]")


def mentions(body):
    """The accountIds an ADF document (or a v2 wiki string) mentions."""
    if isinstance(body, str):
        return _WIKI_MENTION.findall(body)
    found = []
    stack = [body] if isinstance(body, dict) else []
    while stack:
        node = stack.pop(0)
        if node.get("type") == "mention" and node.get("attrs", {}).get("id"):
            found.append(node["attrs"]["id"])
        stack[0:0] = [n for n in node.get("content") or [] if isinstance(n, dict)]
        if node.get("type") == "text":
            found.extend(_WIKI_MENTION.findall(node.get("text", "")))
    return found


def links(world, issue_key):
    """Every link touching an issue, each as {id, type, from, to, phrase}: ``from`` <outward
    phrase> ``to`` (for "Blocks", from blocks to)."""
    key = str(issue_key).upper()
    rows = (
        IssueLink.objects.filter(world=world)
        .filter(_either_end(key))
        .select_related("type", "inward_issue", "outward_issue")
        .order_by("ext_id")
    )
    return [
        {
            "id": str(link.ext_id),
            "type": link.type.name,
            "inward": link.type.inward,
            "outward": link.type.outward,
            "from": link.inward_issue.key,
            "to": link.outward_issue.key,
        }
        for link in rows
    ]


def _either_end(key):
    from django.db.models import Q

    return Q(inward_issue__key=key) | Q(outward_issue__key=key)


# --- Confluence -----------------------------------------------------------------------------------

_TAGS = re.compile(r"<[^>]+>")


def storage_to_text(body):
    """The visible text of a storage-format body: tags dropped, entities decoded, whitespace
    collapsed."""
    text = _TAGS.sub(" ", body or "")
    return " ".join(html.unescape(text).split())


def _page_dict(page):
    return {
        "id": str(page.ext_id),
        "space": page.space.key,
        "title": page.title,
        "parent_id": str(page.parent.ext_id) if page.parent else None,
        "parent_title": page.parent.title if page.parent else None,
        "body": page.body,
        "text": storage_to_text(page.body),
        "labels": sorted(label.name for label in page.labels.all()),
        "version": page.version,
        "status": page.status,
    }


def find_pages(world, *, id=None, space_key=None, title=None, status=None):
    """Pages by id, or by space key and/or exact title (any case); current and drafts unless
    ``status`` says which."""
    qs = Page.objects.filter(world=world).select_related("space", "parent").prefetch_related("labels")
    if id is not None:
        qs = qs.filter(ext_id=int(id)) if str(id).isdecimal() else qs.none()
    if space_key is not None:
        qs = qs.filter(space__key__iexact=str(space_key))
    if title is not None:
        qs = qs.filter(title__iexact=str(title).strip())
    qs = qs.filter(status=status) if status else qs.exclude(status="trashed")
    return [_page_dict(p) for p in qs.order_by("ext_id")]


def page_state(world, *, id=None, space_key=None, title=None):
    """One page (title, space, parent id and title, body and its text, labels, version, status),
    the newest when several match, or None."""
    found = find_pages(
        world, id=id, space_key=space_key, title=title, status="current" if id is None else None
    )
    return found[-1] if found else None


# --- Entities for task variables ------------------------------------------------------------------


def entities(world, kind):
    """The world's entities of one kind as dicts, in a stable order: users, projects, issues,
    spaces, pages, sprints."""
    if kind == "users":
        return users(world)
    if kind == "projects":
        rows = Project.objects.filter(world=world).select_related("lead").order_by("key")
        return [{"id": str(p.ext_id), "key": p.key, "name": p.name, "lead": user_state(p.lead)} for p in rows]
    if kind == "issues":
        return [_issue_dict(i) for i in _issue_queryset(world)]
    if kind == "spaces":
        rows = Space.objects.filter(world=world).order_by("key")
        return [{"id": str(s.ext_id), "key": s.key, "name": s.name} for s in rows]
    if kind == "pages":
        return find_pages(world)
    if kind == "sprints":
        rows = Sprint.objects.filter(world=world).select_related("board").order_by("ext_id")
        return [
            {"id": s.ext_id, "name": s.name, "state": s.state, "board": s.board.ext_id, "goal": s.goal}
            for s in rows
        ]
    raise ValueError(f"unknown entity kind {kind!r}")


ENTITY_KINDS = ("users", "projects", "issues", "spaces", "pages", "sprints")


# --- The trace ------------------------------------------------------------------------------------


def calls(world, *, after_seq=0):
    """The world's API calls in order (those after ``after_seq``, e.g. after a task's setup)."""
    rows = ApiCall.objects.filter(world=world, seq__gt=after_seq).select_related("user").order_by("seq")
    return [
        {
            "seq": c.seq,
            "method": c.method,
            "path": c.path,
            "query": c.query or {},
            "body": c.body,
            "status": c.status,
            "response": c.response,
            "operation": c.operation,
            "user": c.user.account_id if c.user else None,
        }
        for c in rows
    ]


def changes(world, *, after_seq=0):
    """The world's change log in order: action, object type and ref, field, before, after, and
    the seq of the call that made it (None for changes made outside a call)."""
    rows = Change.objects.filter(world=world).select_related("call").order_by("id")
    if after_seq:
        rows = rows.filter(call__seq__gt=after_seq)
    return [
        {
            "seq": ch.call.seq if ch.call else None,
            "action": ch.action,
            "object_type": ch.object_type,
            "object_ref": ch.object_ref,
            "field": ch.field,
            "before": ch.before,
            "after": ch.after,
        }
        for ch in rows
    ]


def acting_user(world, account_id=None):
    """The User to make calls as (what SimClient takes): the one with ``account_id``, or the
    world's first active user in seed order; None when there is no such user."""
    users_ = User.objects.filter(world=world)
    if account_id is not None:
        return users_.filter(account_id=str(account_id)).first()
    return users_.filter(active=True).order_by("pk").first()
