"""Confluence Cloud REST v2: pages — list, create (under the space's homepage by default), get
(a version too), update (version current+1, else 409), delete (trash, purge)."""

from simulator.handlers import confluence_pages as store
from simulator.handlers.confluence_cursor import keyset_page, results
from simulator.handlers.confluence_v2_common import (
    PAGE_CREATE,
    PAGE_LIST_PARAMS,
    PAGE_NOT_FOUND,
    PAGE_SORTS,
    PAGE_UPDATE,
    V2,
    body_format,
    numeric_params,
    page_json,
    path_id,
    path_page,
    statuses_param,
)
from simulator.models import PageVersion
from simulator.routing import CONFLUENCE_V2, Routes, no_content
from simulator.world_config import config_for

routes = Routes(api=CONFLUENCE_V2)


# --- Pages ----------------------------------------------------------------------------------------


@routes.get(
    f"{V2}/pages",
    operation="getPages",
    summary="Pages by id, space, exact title and status (cursor-paged); body-format none/storage/...",
    params=["id", "space-id", *PAGE_LIST_PARAMS],
)
def list_pages(req):
    qs = store.pages(req).filter(status__in=statuses_param(req, ["current", "archived"]))
    ids = numeric_params(req, req.param_list("id"), "page id")
    if ids:
        qs = qs.filter(ext_id__in=ids)
    space_ids = numeric_params(req, req.param_list("space-id"), "space id")
    if space_ids:
        qs = qs.filter(space__ext_id__in=space_ids)
    if req.param("title"):
        qs = qs.filter(title=req.param("title"))
    fmt = body_format(req)
    rows, cursor = keyset_page(req, qs, PAGE_SORTS, "id")
    return results(req, [page_json(req, p, fmt) for p in rows], cursor)


def _body_value(req, body):
    """The page body of a v2 write, flat or nested, as storage format (None: not given)."""
    if body is None:
        return None
    if isinstance(body, dict) and ("value" in body or "representation" in body):
        if "value" not in body:
            raise req.error(400, "The body must carry a value.")
        return store.storage_from(req, body.get("representation"), body["value"])
    return store.nested_body(req, body)


def _json_body(req):
    if not isinstance(req.body, dict):
        raise req.error(400, "The request body must be a JSON object.")
    return req.body


@routes.post(
    f"{V2}/pages",
    operation="createPage",
    summary="Create a page; without parentId (and root-level) it goes under the space's homepage",
    body_schema=PAGE_CREATE,
    params=["embedded", "private", "root-level"],
)
def create_page(req):
    body = _json_body(req)
    if body.get("spaceId") in (None, ""):
        raise req.error(400, "spaceId is required.")
    space_id = str(body["spaceId"]).strip()
    if not space_id.isdecimal():
        raise req.error(400, f"The spaceId '{space_id}' is not a number.")
    new_title = body.get("title")
    # The title check and the page's position come with the space's read (store.space_by_id).
    space = store.space_by_id(req, space_id, new_title.strip() if isinstance(new_title, str) else None)
    if space is None:
        raise req.error(404, f"Space {space_id} not found")
    status = str(body.get("status") or "current").lower()
    if status not in ("current", "draft"):
        raise req.error(400, f"Invalid value for status: {status}. Valid values: current, draft.")
    title = body.get("title")
    if title is not None and not isinstance(title, str):
        raise req.error(400, "title must be a string.")
    title = (title or "").strip()
    if not title and status == "current":
        raise req.error(400, "Title is required for a published page.")
    if len(title) > 255:
        raise req.error(400, "Title must be at most 255 characters.")
    root_level = req.bool_param("root-level")
    if body.get("parentId") not in (None, ""):
        if root_level:
            raise req.error(400, "parentId cannot be given together with root-level=true.")
        parent = store.parent_page(req, space, body["parentId"])
    elif root_level or space.homepage_id is None or space.homepage.status != "current":
        parent = None
    else:
        parent = space.homepage
    storage = _body_value(req, body.get("body"))
    if status == "current":
        store.check_title_free(req, space, title)
    page = store.create_page(req, space, title=title, body=storage, parent=parent, status=status, held=True)
    return page_json(req, page, "storage", single=True)


@routes.get(
    f"{V2}/pages/{{id}}",
    operation="getPageById",
    summary="One page; the body only when body-format asks for it",
    params=["body-format", "status", "get-draft", "version"],
)
def get_page(req):
    statuses = statuses_param(req, ["current", "archived", "draft"])
    page = store.find_page(req, path_id(req), statuses, PAGE_NOT_FOUND)
    fmt = body_format(req)
    if req.param("version") not in (None, "", str(page.version)):
        number = req.int_param("version", 0)
        old = PageVersion.objects.filter(page=page, number=number).first()
        if old is None:
            raise req.error(404, f"Version {number} of page {page.ext_id} not found")
        page.title, page.body = old.title, old.body
        page.version, page.version_message = old.number, old.message
        page.version_author_id, page.version_created = old.author_id, old.created
        page.status = "historical"
    return page_json(req, page, fmt, single=True)


@routes.put(
    f"{V2}/pages/{{id}}",
    operation="updatePage",
    summary="Update a page: version.number must be current+1 (else 409); status optional; parentId moves it",
    body_schema=PAGE_UPDATE,
)
def update_page(req):
    page = path_page(req, ("current", "archived", "draft", "trashed"))
    body = _json_body(req)
    if body.get("id") not in (None, "") and str(body["id"]).strip() != str(page.ext_id):
        raise req.error(400, f"The id in the body ({body['id']}) is not the page's id ({page.ext_id}).")
    version = body.get("version")
    number = version.get("number") if isinstance(version, dict) else None
    if isinstance(number, bool) or not isinstance(number, int | str) or not str(number).strip().isdecimal():
        raise req.error(400, "version.number is required: the page's current version number plus one.")
    number = int(number)
    if number != page.version + 1:
        raise req.error(
            409,
            "Version must be incremented when updating a page. "
            f"Current Version: [{page.version}]. Provided version: [{number}]",
        )
    status = body.get("status")
    if status is not None:
        status = str(status).lower()
        if status not in ("current", "draft"):
            raise req.error(400, f"Invalid value for status: {status}. Valid values: current, draft.")
    elif page.status == "trashed":
        status = "current"
    if body.get("spaceId") not in (None, "") and str(body["spaceId"]).strip() != str(page.space.ext_id):
        raise req.error(400, "Moving a page to another space is not supported.")
    title = body.get("title")
    if title is not None:
        if not isinstance(title, str) or not title.strip():
            raise req.error(400, "Title cannot be empty.")
        title = title.strip()
    parent = False
    if body.get("parentId") not in (None, "") and str(body["parentId"]).strip() != (
        str(page.parent.ext_id) if page.parent_id else None
    ):
        parent = store.parent_page(req, page.space, body["parentId"], moving=page)
    if (status or page.status) == "current":
        store.check_title_free(req, page.space, title or page.title, page)
    if body.get("ownerId") not in (None, ""):
        owner = config_for(req.world).user(body["ownerId"])
        if owner is None:
            raise req.error(400, f"No user with accountId {body['ownerId']}.")
        page.owner = owner
    page = store.update_page(
        req,
        page,
        title=title,
        body=_body_value(req, body.get("body")),
        status=status,
        parent=parent,
        version=number,
        message=str(version.get("message") or ""),
    )
    return page_json(req, page, "storage", single=True)


@routes.delete(
    f"{V2}/pages/{{id}}",
    operation="deletePage",
    summary="Move a page to the trash; purge=true on a trashed page (or a draft) deletes it",
    params=["purge", "draft"],
)
def delete_page(req):
    page = path_page(req, ("current", "archived", "draft", "trashed"))
    purge = req.bool_param("purge")
    if page.status == "draft":
        store.purge_page(req, page)
    elif purge:
        if page.status != "trashed":
            raise req.error(400, "Only a trashed page can be purged; delete it first.")
        store.purge_page(req, page)
    elif page.status == "trashed":
        raise req.error(404, PAGE_NOT_FOUND)
    else:
        store.trash_page(req, page)
    return no_content()
