"""Confluence Cloud REST v2: the tree around a page (children, direct children, ancestors), its
versions and its labels."""

from simulator.handlers import confluence_pages as store
from simulator.handlers.confluence_cursor import keyset_page, results
from simulator.handlers.confluence_v2_common import CHILD_SORTS, V2, path_page, statuses_param, version_json
from simulator.models import Page, PageLabel, PageVersion
from simulator.routing import CONFLUENCE_V2, Routes

routes = Routes(api=CONFLUENCE_V2)


# --- The tree around a page -----------------------------------------------------------------------


def _children(req, *, direct):
    page = path_page(req)
    qs = Page.objects.filter(parent=page, status__in=statuses_param(req, ["current", "archived"]))
    qs = qs.select_related("space")
    rows, cursor = keyset_page(req, qs, CHILD_SORTS, "child-position")
    items = []
    for child in rows:
        item = {"id": str(child.ext_id), "status": child.status, "title": child.title}
        if direct:
            item["type"] = "page"
        item.update({"spaceId": str(child.space.ext_id), "childPosition": child.position})
        items.append(item)
    return results(req, items, cursor)


@routes.get(
    f"{V2}/pages/{{id}}/children",
    operation="getChildPages",
    summary="The child pages of a page (deprecated on Cloud)",
    params=["cursor", "limit", "sort"],
)
def child_pages(req):
    return _children(req, direct=False)


@routes.get(
    f"{V2}/pages/{{id}}/direct-children",
    operation="getPageDirectChildren",
    summary="The direct children of a page",
    params=["cursor", "limit", "sort"],
)
def direct_children(req):
    return _children(req, direct=True)


@routes.get(
    f"{V2}/pages/{{id}}/ancestors",
    operation="getPageAncestors",
    summary="The ancestors of a page, root first (the nearest ``limit`` of them)",
    params=["limit"],
)
def ancestors(req):
    page = path_page(req)
    nodes = store.tree([page.space_id])
    chain = store.ancestor_pks(page, nodes)
    limit = req.int_param("limit", 25, minimum=1, maximum=250)
    items = [{"id": str(nodes[pk][1]), "type": "page"} for pk in chain[-limit:]]
    return results(req, items, None)


@routes.get(
    f"{V2}/pages/{{id}}/versions",
    operation="getPageVersions",
    summary="The versions of a page, newest first",
    params=["cursor", "limit", "sort", "body-format"],
)
def versions(req):
    page = path_page(req)
    sort = req.param("sort") or "-modified-date"
    if sort not in ("modified-date", "-modified-date"):
        raise req.error(400, f"Invalid value for sort: {sort}. Valid values: modified-date, -modified-date.")
    rows = [
        (v.number, v.message, v.author_id, v.created, v.title)
        for v in PageVersion.objects.filter(page=page).only(
            "number", "message", "author_id", "created", "title"
        )
    ]
    rows.append(
        (page.version, page.version_message, page.version_author_id, page.version_created, page.title)
    )
    rows.sort(key=lambda r: r[0], reverse=sort.startswith("-"))
    if req.param("cursor"):
        after = req.param("cursor")
        if not after.isdecimal():
            raise req.error(400, "The cursor is invalid or expired.")
        rows = [r for r in rows if (r[0] < int(after) if sort.startswith("-") else r[0] > int(after))]
    limit = req.int_param("limit", 25, minimum=1, maximum=250)
    items = [
        {
            **version_json(req, number=n, message=m, author_pk=a, created=c),
            "page": {"id": str(page.ext_id), "title": t},
        }
        for n, m, a, c, t in rows[:limit]
    ]
    return results(req, items, str(rows[limit - 1][0]) if len(rows) > limit else None)


# --- Labels ---------------------------------------------------------------------------------------


def label_json(label):
    return {"id": str(label.ext_id), "name": label.name, "prefix": label.prefix}


@routes.get(
    f"{V2}/pages/{{id}}/labels",
    operation="getPageLabels",
    summary="The labels of a page",
    params=["prefix", "sort", "cursor", "limit"],
)
def page_labels(req):
    page = path_page(req)
    qs = PageLabel.objects.filter(page=page)
    if req.param("prefix"):
        qs = qs.filter(prefix=req.param("prefix"))
    rows, cursor = keyset_page(req, qs, {"name": ("name", "ext_id"), "id": ("ext_id",)}, "name")
    return results(req, [label_json(label) for label in rows], cursor)


@routes.post(
    f"{V2}/pages/{{id}}/labels",
    operation="addPageLabel",
    summary="Add a label (off-spec: Cloud adds labels through v1; the ConfluenceV2 client calls this)",
    body_schema={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
)
def add_page_label(req):
    page = path_page(req, ("current", "draft"))
    items = req.body if isinstance(req.body, list) else [req.body]
    if not items or not all(isinstance(i, dict) and i.get("name") for i in items):
        raise req.error(400, 'Give the label as {"name": "..."}.')
    wanted = [(i.get("prefix") or "global", i["name"]) for i in items]
    labels = store.add_labels(req, page, wanted)
    names = {str(n).strip().lower() for _, n in wanted}
    added = [label for label in labels if label.name in names]
    if len(items) == 1 and isinstance(req.body, dict):
        return label_json(added[0])
    return {"results": [label_json(label) for label in added]}
