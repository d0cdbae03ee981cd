"""Confluence Cloud REST v2: spaces (list, get) and the pages of a space."""

from simulator.handlers import confluence_pages as store
from simulator.handlers.confluence_cursor import keyset_page, results
from simulator.handlers.confluence_v2_common import (
    PAGE_LIST_PARAMS,
    PAGE_SORTS,
    SPACE_SORTS,
    V2,
    body_format,
    numeric_params,
    page_json,
    path_id,
    space_json,
    statuses_param,
)
from simulator.models import Space
from simulator.routing import CONFLUENCE_V2, Routes

routes = Routes(api=CONFLUENCE_V2)


# --- Spaces ---------------------------------------------------------------------------------------


@routes.get(
    f"{V2}/spaces",
    operation="getSpaces",
    summary="Spaces by ids, keys, type and status (cursor-paged)",
    params=["ids", "keys", "type", "status", "sort", "description-format", "cursor", "limit"],
)
def list_spaces(req):
    spaces = Space.objects.filter(world=req.world).select_related("homepage")
    ids = numeric_params(req, req.param_list("ids"), "space id")
    if ids:
        spaces = spaces.filter(ext_id__in=ids)
    if req.param_list("keys"):
        spaces = spaces.filter(key__in=req.param_list("keys"))
    if req.param("type"):
        spaces = spaces.filter(type=req.param("type"))
    if req.param("status"):
        spaces = spaces.filter(status=req.param("status"))
    rows, cursor = keyset_page(req, spaces, SPACE_SORTS, "id")
    fmt = req.param("description-format")
    return results(req, [space_json(req, s, fmt) for s in rows], cursor)


def _space(req):
    space = store.space_by_id(req, path_id(req))
    if space is None:
        raise req.error(404, "Space not found")
    return space


@routes.get(f"{V2}/spaces/{{id}}", operation="getSpaceById", summary="One space")
def get_space(req):
    return space_json(req, _space(req), req.param("description-format"))


@routes.get(
    f"{V2}/spaces/{{id}}/pages",
    operation="getPagesInSpace",
    summary="The pages of a space (depth all or root)",
    params=["depth", *PAGE_LIST_PARAMS],
)
def space_pages(req):
    space = _space(req)
    qs = store.pages(req).filter(space=space, status__in=statuses_param(req, ["current", "archived"]))
    depth = (req.param("depth") or "all").lower()
    if depth not in ("all", "root"):
        raise req.error(400, f"Invalid value for depth: {depth}. Valid values: all, root.")
    if depth == "root":
        qs = qs.filter(parent__isnull=True)
    if req.param("title"):
        qs = qs.filter(title=req.param("title"))
    fmt = body_format(req)
    rows, cursor = keyset_page(req, qs, PAGE_SORTS, "id")
    return results(req, [page_json(req, p, fmt) for p in rows], cursor)
