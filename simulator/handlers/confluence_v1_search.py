"""The classic Confluence REST v1: the space list (``GET /wiki/rest/api/space``) and CQL search
(the subset in ``simulator.cql``) — ``GET /wiki/rest/api/content/search`` (pages) and
``GET /wiki/rest/api/search`` (search results wrapping the pages, what the classic client's
``cql()`` calls) — offset-paged like the other v1 lists, over the same store as v2."""

from simulator.cql import CqlError, compile_cql
from simulator.handlers import confluence_pages as store
from simulator.handlers.confluence_v1 import (
    V1,
    content_json,
    offset_params,
    offset_results,
    parse_expand,
    space_json,
)
from simulator.models import Space
from simulator.routing import CONFLUENCE_V1, Routes
from simulator.selectors import storage_to_text

routes = Routes(api=CONFLUENCE_V1)
SPACE_TYPES = ("global", "personal", "collaboration", "knowledge_base")


@routes.get(
    f"{V1}/space",
    operation="getSpaces",
    summary="Spaces by key, type and status (offset-paged, by key)",
    params=["spaceKey", "type", "status", "expand", "start", "limit"],
)
def list_spaces(req):
    spaces = Space.objects.filter(world=req.world).select_related("homepage")
    keys = req.param_list("spaceKey")
    if keys:
        spaces = spaces.filter(key__in=keys)
    kind = (req.param("type") or "").lower()
    if kind:
        if kind not in SPACE_TYPES:
            raise req.error(400, f"Invalid space type: {kind}. Valid values: {', '.join(SPACE_TYPES)}.")
        spaces = spaces.filter(type=kind)
    status = (req.param("status") or "").lower()
    if status:
        if status not in ("current", "archived"):
            raise req.error(400, f"Invalid space status: {status}. Valid values: current, archived.")
        spaces = spaces.filter(status=status)
    start, limit = offset_params(req, maximum=500)
    rows = list(spaces.order_by("key", "ext_id")[start : start + limit + 1])
    expand = parse_expand(req)
    items = [space_json(req, s, expand) for s in rows[:limit]]
    return offset_results(req, "/rest/api/space", items, start, limit, len(rows) > limit)


@routes.get(
    f"{V1}/content/search",
    operation="searchContentByCQL",
    summary="Pages matching a CQL query: type, space, title, text ~, label, id, parent, ancestor, "
    "AND/OR/NOT, ORDER BY title/created/lastmodified",
    params=["cql", "cqlcontext", "expand", "start", "limit"],
)
def search_content(req):
    rows, more, start, limit, expand, _ = _matching_pages(req)
    nodes = store.tree({p.space_id for p in rows}) if "ancestors" in expand and rows else None
    items = [content_json(req, p, expand, nodes) for p in rows]
    extra = {"cqlQuery": req.param("cql")}
    return offset_results(req, "/rest/api/content/search", items, start, limit, more, extra)


def _matching_pages(req):
    """The current pages the ``cql`` parameter matches, one page of them: (rows, more, start,
    limit, expand, the whole match as a queryset)."""
    cql = req.param("cql")
    if not cql or not cql.strip():
        raise req.error(400, "The cql parameter is required.")
    try:
        where, ordering = compile_cql(req.world, cql)
    except CqlError as err:
        raise req.error(400, str(err)) from None
    start, limit = offset_params(req)
    pages = store.pages(req).filter(status="current").filter(where).order_by(*ordering)
    expand = parse_expand(req)
    if "metadata.labels" in expand:
        pages = pages.prefetch_related("labels")
    rows = list(pages[start : start + limit + 1])
    return rows[:limit], len(rows) > limit, start, limit, expand, pages


@routes.get(
    f"{V1}/search",
    operation="searchByCQL",
    summary="Search results (content, title, excerpt, url, container) for a CQL query over pages",
    params=["cql", "cqlcontext", "expand", "start", "limit", "includeArchivedSpaces", "excerpt"],
)
def search(req):
    rows, more, start, limit, expand, pages = _matching_pages(req)
    content_expand = {e.removeprefix("content.") for e in expand if e.startswith("content.")}
    results = []
    for page in rows:
        text = storage_to_text(page.body)
        results.append(
            {
                "content": content_json(req, page, content_expand),
                "title": page.title,
                "excerpt": text[:200],
                "url": store.page_links(page)["webui"],
                "resultGlobalContainer": {
                    "title": page.space.name,
                    "displayUrl": f"/spaces/{page.space.key}",
                },
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": "aui-icon content-type-page",
                "lastModified": store.wiki_time(page.version_created),
                "score": 0.0,
            }
        )
    total = start + len(rows) if not more else pages.count()
    extra = {"totalSize": total, "cqlQuery": req.param("cql"), "searchDuration": 0}
    return offset_results(req, "/rest/api/search", results, start, limit, more, extra)
