"""Read-only pages of the simulator: the worlds, a world's projects, spaces and recent calls, a
board, an issue with its history, a space's page tree and a page with its versions.

Everything a world holds is untrusted text (seeds and agents write it): templates escape it all,
Confluence storage bodies are shown as source text, never rendered. Each page runs a small, fixed
number of queries whatever the world's size (tests/simulator/test_pages.py counts them).
"""

import datetime as dt
import json

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.dateparse import parse_datetime

from simulator import selectors
from simulator.models import (
    ApiCall,
    Board,
    Change,
    Issue,
    Page,
    Project,
    Space,
    Sprint,
    Status,
    World,
)

WORLDS_PER_PAGE = 50
RECENT_CALLS = 30
BOARD_CARDS = 300  # a board shows at most this many issues


def _world(slug):
    return get_object_or_404(World.objects.select_related("forked_from"), slug=slug)


def _context(world=None, **values):
    return {"section": "simulator", "world": world, **values}


# --- Worlds ---------------------------------------------------------------------------------------


def worlds_index(request):
    """Newest first, filtered by seed and kind, in pages of WORLDS_PER_PAGE (keyset on
    created_at + id: ``?after=<created_at>~<id>`` of the last row shown)."""
    seed = request.GET.get("seed", "").strip()
    kind = request.GET.get("kind", "")
    calls = (
        ApiCall.objects.filter(world=OuterRef("pk"))
        .order_by()
        .values("world")
        .annotate(n=Count("id"))
        .values("n")
    )
    worlds = World.objects.select_related("forked_from").annotate(calls=Coalesce(Subquery(calls), 0))
    if seed:
        worlds = worlds.filter(seed=seed)
    if kind == "template":
        worlds = worlds.filter(is_template=True)
    elif kind == "fork":
        worlds = worlds.filter(is_template=False)
    cursor = _parse_cursor(request.GET.get("after", ""))
    if cursor:
        created, pk = cursor
        worlds = worlds.filter(Q(created_at__lt=created) | Q(created_at=created, pk__lt=pk))
    rows = list(worlds.order_by("-created_at", "-pk")[: WORLDS_PER_PAGE + 1])
    more = len(rows) > WORLDS_PER_PAGE
    rows = rows[:WORLDS_PER_PAGE]
    after = f"{rows[-1].created_at.isoformat()}~{rows[-1].pk}" if more else ""
    seeds = World.objects.order_by("seed").values_list("seed", flat=True).distinct()
    return render(
        request,
        "simulator/worlds.html",
        _context(worlds=rows, after=after, seed=seed, kind=kind, seeds=list(seeds), paged=bool(cursor)),
    )


def _parse_cursor(text):
    created, _, pk = text.rpartition("~")
    when = parse_datetime(created) if created else None
    if when is None or not pk.isdecimal():
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when, int(pk)


def world_detail(request, slug):
    world = _world(slug)
    projects = (
        Project.objects.filter(world=world)
        .select_related("lead")
        .annotate(issue_count=Count("issues"))
        .order_by("key")
    )
    boards = Board.objects.filter(world=world).select_related("project").order_by("ext_id")
    spaces = Space.objects.filter(world=world).annotate(page_count=Count("pages")).order_by("key")
    calls = ApiCall.objects.filter(world=world).select_related("user").order_by("-seq")[:RECENT_CALLS]
    return render(
        request,
        "simulator/world.html",
        _context(world, projects=projects, boards=boards, spaces=spaces, calls=calls),
    )


# --- Boards ---------------------------------------------------------------------------------------


def board(request, slug, board_id):
    """A Jira board: its columns (each a set of statuses), its project's issues; a scrum board
    shows one sprint (``?sprint=<id>``, the active one by default)."""
    world = _world(slug)
    the_board = get_object_or_404(Board.objects.select_related("project"), world=world, ext_id=board_id)
    statuses = {s.ext_id: s for s in Status.objects.filter(world=world)}
    columns = [
        {
            "name": c.get("name", ""),
            "statuses": [statuses[i] for i in c.get("status_ids", []) if i in statuses],
        }
        for c in the_board.columns
    ]
    issues = _cards(world, the_board.project)
    sprints, sprint = [], None
    if the_board.type == "scrum":
        sprints = list(Sprint.objects.filter(world=world, board=the_board).order_by("ext_id"))
        wanted = request.GET.get("sprint", "")
        sprint = next((s for s in sprints if str(s.ext_id) == wanted), None) or next(
            (s for s in sprints if s.state == "active"), None
        )
        if sprint is not None:
            issues = issues.filter(sprints=sprint)
    return _render_board(
        request, world, the_board.name, the_board.project, columns, issues, sprints=sprints, sprint=sprint
    )


def project_board(request, slug, key):
    """A project's issues in one column per status of its workflow (initial status first)."""
    world = _world(slug)
    project = get_object_or_404(Project.objects.select_related("workflow"), world=world, key=key.upper())
    workflow = project.workflow
    order = [workflow.initial_status_id]
    for transition in workflow.transitions.order_by("transition_id"):
        if transition.to_status_id not in order:
            order.append(transition.to_status_id)
    by_pk = Status.objects.in_bulk(order)
    columns = [{"name": by_pk[pk].name, "statuses": [by_pk[pk]]} for pk in order if pk in by_pk]
    return _render_board(
        request, world, f"{project.key} issues by status", project, columns, _cards(world, project)
    )


def _cards(world, project):
    return (
        Issue.objects.filter(world=world, project=project)
        .select_related("status", "assignee", "priority", "issue_type")
        .prefetch_related("labels")
        .order_by("number")
    )


def _render_board(request, world, title, project, columns, issues, sprints=(), sprint=None):
    issues = list(issues[:BOARD_CARDS])
    placed = set()
    for column in columns:
        ids = {s.pk for s in column["statuses"]}
        column["issues"] = [i for i in issues if i.status_id in ids]
        placed |= ids
    # Issues in a status no column maps stay visible rather than vanish.
    unmapped = [i for i in issues if i.status_id not in placed]
    if unmapped:
        columns.append({"name": "Other statuses", "statuses": [], "issues": unmapped})
    return render(
        request,
        "simulator/board.html",
        _context(
            world,
            title=title,
            project=project,
            columns=columns,
            sprints=sprints,
            sprint=sprint,
            truncated=len(issues) >= BOARD_CARDS,
        ),
    )


# --- Issues ---------------------------------------------------------------------------------------


def issue_detail(request, slug, key):
    world = _world(slug)
    issue = selectors.issue_state(world, key)
    if issue is None:
        raise Http404("No such issue in this world.")
    comments = selectors.comments(world, issue["key"])
    links = selectors.links(world, issue["key"])
    for link in links:
        # Say it from this issue's side: "blocks WEB-8" or "is blocked by OPS-3".
        outgoing = link["from"] == issue["key"]
        link["phrase"] = link["outward"] if outgoing else link["inward"]
        link["other"] = link["to"] if outgoing else link["from"]
    history = issue_history(world, issue["key"], [c["id"] for c in comments])
    return render(
        request,
        "simulator/issue.html",
        _context(world, issue=issue, comments=comments, links=links, history=history),
    )


def issue_history(world, key, comment_ids=()):
    """What each call did to an issue, its comments, watchers and links: a list of
    {seq, method, path, status, changes: [{action, object, field, before, after}]} in call order,
    the values as display text."""
    comment_refs = (
        Change.objects.filter(world=world, object_type="comment")
        .filter(Q(field="issue", after=key) | Q(before__issue=key))
        .values("object_ref")
    )
    link_refs = (
        Change.objects.filter(world=world, object_type="issuelink")
        .filter(
            Q(field__in=["inwardIssue", "outwardIssue"], after=key)
            | Q(before__inwardIssue=key)
            | Q(before__outwardIssue=key)
        )
        .values("object_ref")
    )
    related = (
        Q(object_type__in=["issue", "watcher"], object_ref=key)
        | Q(object_type="comment", object_ref__in=list(comment_ids))
        | Q(object_type="comment", object_ref__in=comment_refs)
        | Q(object_type="issuelink", object_ref__in=link_refs)
    )
    rows = Change.objects.filter(world=world).filter(related).select_related("call").order_by("id")
    history = []
    for change in rows:
        if not history or history[-1]["call_id"] != change.call_id:
            call = change.call
            history.append(
                {
                    "call_id": change.call_id,
                    "seq": call.seq if call else None,
                    "method": call.method if call else "",
                    "path": call.path if call else "",
                    "status": call.status if call else None,
                    "changes": [],
                }
            )
        history[-1]["changes"].append(
            {
                "action": change.get_action_display(),
                "object": f"{change.object_type} {change.object_ref}",
                "field": change.field,
                "before": display_value(change.before),
                "after": display_value(change.after),
            }
        )
    return history


def display_value(value):
    """A change's value as one line of text (escaped by the template like any other text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- Confluence -----------------------------------------------------------------------------------


def space_detail(request, slug, key):
    """A space's page tree as nested lists (trashed pages left out)."""
    world = _world(slug)
    space = get_object_or_404(Space.objects.select_related("homepage"), world=world, key=key)
    pages = list(
        Page.objects.filter(world=world, space=space)
        .exclude(status="trashed")
        .only("id", "ext_id", "title", "status", "version", "parent_id", "position")
        .order_by("position", "ext_id")
    )
    return render(request, "simulator/space.html", _context(world, space=space, outline=page_outline(pages)))


def page_outline(pages):
    """The page tree as a flat list of steps for a template to write nested lists from without
    recursion ({"page"}: an item, {"open"}/{"close"}: its children's list, {"end"}: the item's
    end). Parents outside the list (trashed, another space) make roots; a parent cycle made by an
    agent shows each page once."""
    nodes = {p.pk: [] for p in pages}
    roots = []
    for p in pages:
        (nodes[p.parent_id] if p.parent_id in nodes and p.parent_id != p.pk else roots).append(p)
    outline, seen = [], set()
    for root in [*roots, *pages]:  # pages left unseen after the roots sit on a parent cycle
        if root.pk in seen:
            continue
        stack = [("page", root)]
        while stack:
            step, page = stack.pop()
            if step != "page":
                outline.append({step: True})
                continue
            if page.pk in seen:
                continue
            seen.add(page.pk)
            outline.append({"page": page})
            stack.append(("end", None))
            children = [c for c in nodes[page.pk] if c.pk not in seen]
            if children:
                outline.append({"open": True})
                stack.append(("close", None))
                stack.extend(("page", c) for c in reversed(children))
    return outline


def page_detail(request, slug, page_id):
    world = _world(slug)
    page = get_object_or_404(
        Page.objects.select_related("space", "parent", "author", "version_author").prefetch_related("labels"),
        world=world,
        ext_id=page_id,
    )
    versions = page.versions.select_related("author").order_by("-number")
    children = (
        Page.objects.filter(world=world, parent=page).exclude(status="trashed").order_by("position", "ext_id")
    )
    return render(
        request,
        "simulator/page.html",
        _context(world, page=page, versions=versions, children=children, space=page.space),
    )
