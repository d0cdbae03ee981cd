"""The classic Confluence REST v1: the space list (``GET /wiki/rest/api/space``) and CQL content
search (``GET /wiki/rest/api/content/search?cql=...``, the subset in ``simulator.cql``), both
offset-paged like the other v1 lists, over the same store as v2."""

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
    nodes = store.tree({p.space_id for p in rows}) if "ancestors" in expand and rows else None
    items = [content_json(req, p, expand, nodes) for p in rows[:limit]]
    extra = {"cqlQuery": cql}
    return offset_results(req, "/rest/api/content/search", items, start, limit, len(rows) > limit, extra)
