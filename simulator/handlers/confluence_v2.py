"""Confluence Cloud REST v2 (/wiki/api/v2): spaces, pages, page children, ancestors, versions and
labels, over the page store of confluence_pages.py.

Lists are cursor-paged (keyset: the cursor carries the sort values of the last row given) with a
relative ``_links.next``, ``_links.base`` and a ``Link`` header. Errors use the v2 shape
``{"errors": [{"status", "code", "title", "detail"}]}``.
"""

from simulator.handlers import confluence_pages as store
from simulator.handlers.confluence_cursor import keyset_page, results
from simulator.models import Page, PageLabel, PageVersion, Space
from simulator.routing import CONFLUENCE_V2, Routes, no_content
from simulator.world_config import config_for

routes = Routes(api=CONFLUENCE_V2)
V2 = "/wiki/api/v2"
PAGE_NOT_FOUND = "Page not found"
BODY_FORMATS = (
    "storage",
    "atlas_doc_format",
    "view",
    "export_view",
    "styled_view",
    "anonymous_export_view",
    "editor",
    "none",  # off-spec, sent by ConfluenceV2: no body
)
PAGE_SORTS = {
    "id": ("ext_id",),
    "created-date": ("created", "ext_id"),
    "modified-date": ("version_created", "ext_id"),
    "title": ("title", "ext_id"),
}
SPACE_SORTS = {"id": ("ext_id",), "key": ("key", "ext_id"), "name": ("name", "ext_id")}
CHILD_SORTS = {**PAGE_SORTS, "child-position": ("position", "ext_id")}
PAGE_LIST_PARAMS = ["sort", "status", "title", "body-format", "cursor", "limit"]
BODY_WRITE = {
    "type": "object",
    "properties": {
        "representation": {"type": "string"},
        "value": {"type": "string"},
        "storage": {"type": "object"},
    },
}
PAGE_CREATE = {
    "type": "object",
    "required": ["spaceId"],
    "properties": {
        "spaceId": {"type": "string"},
        "status": {"type": "string", "enum": ["current", "draft"]},
        "title": {"type": "string"},
        "parentId": {"type": "string"},
        "body": BODY_WRITE,
    },
}
PAGE_UPDATE = {
    "type": "object",
    "required": ["id", "version"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["current", "draft"]},
        "title": {"type": "string"},
        "parentId": {"type": "string"},
        "spaceId": {"type": "string"},
        "ownerId": {"type": "string"},
        "body": BODY_WRITE,
        "version": {
            "type": "object",
            "required": ["number"],
            "properties": {"number": {"type": "integer"}, "message": {"type": "string"}},
        },
    },
}


# --- Rendering ------------------------------------------------------------------------------------


def space_json(req, space, description_format=None):
    users = config_for(req.world).user_by_pk
    out = {
        "id": str(space.ext_id),
        "key": space.key,
        "name": space.name,
        "type": space.type,
        "status": space.status,
        "authorId": users[space.author_id].account_id if space.author_id in users else None,
        "createdAt": store.wiki_time(space.created),
        "homepageId": str(space.homepage.ext_id) if space.homepage_id else None,
        "_links": {"webui": f"/spaces/{space.key}"},
    }
    if description_format in ("plain", "view"):
        out["description"] = {
            description_format: {"representation": description_format, "value": space.description}
        }
    return out


def _account(req, user_pk):
    user = config_for(req.world).user_by_pk.get(user_pk)
    return user.account_id if user else None


def version_json(req, *, number, message, author_pk, created):
    return {
        "number": number,
        "message": message,
        "minorEdit": False,
        "authorId": _account(req, author_pk),
        "createdAt": store.wiki_time(created),
    }


def page_json(req, page, body_format=None, *, single=False):
    """A page as v2 shows it; the body only in the format asked for (none: an empty body)."""
    out = {
        "id": str(page.ext_id),
        "status": page.status,
        "title": page.title,
        "spaceId": str(page.space.ext_id),
    }
    if page.parent_id:  # the schema has no null for these: a root page leaves them out
        out["parentId"] = str(page.parent.ext_id)
        out["parentType"] = "page"
    out.update(
        {
            "position": page.position,
            "authorId": _account(req, page.author_id),
            "ownerId": _account(req, page.owner_id),
            "lastOwnerId": None,
            "createdAt": store.wiki_time(page.created),
            "version": version_json(
                req,
                number=page.version,
                message=page.version_message,
                author_pk=page.version_author_id,
                created=page.version_created,
            ),
            "body": {}
            if body_format in (None, "none")
            else {body_format: store.body_as(page.body, body_format)},
            "_links": store.page_links(page),
        }
    )
    if single:
        out["_links"]["base"] = store.wiki_base(req)
    return out


# --- Parameters and pages of results --------------------------------------------------------------


def _body_format(req):
    fmt = req.param("body-format")
    if fmt is None or fmt == "":
        return None
    fmt = fmt.lower()
    if fmt not in BODY_FORMATS:
        raise req.error(
            400, f"Invalid value for body-format: {fmt}. Valid values: {', '.join(BODY_FORMATS)}."
        )
    return fmt


def _numeric(req, values, name):
    out = []
    for value in values:
        if not value.isdecimal():
            raise req.error(400, f"The {name} '{value}' is not a number.")
        out.append(int(value))
    return out


def _path_id(req):
    text = req.path_params["id"]
    if not text.isdecimal():
        raise req.error(400, f"The id '{text}' is not a number.")
    return int(text)


def _statuses(req, default):
    wanted = [s.lower() for s in req.param_list("status")]
    allowed = {"current", "archived", "deleted", "trashed", "draft", "historical", "any"}
    bad = [s for s in wanted if s not in allowed]
    if bad:
        raise req.error(400, f"Invalid value for status: {bad[0]}.")
    if "any" in wanted:
        return ["current", "archived", "draft", "trashed"]
    return wanted or list(default)


def _page(req, statuses=("current", "archived", "draft")):
    return store.find_page(req, _path_id(req), statuses, PAGE_NOT_FOUND)


# --- Spaces ---------------------------------------------------------------------------------------


@routes.get(
    f"{V2}/spaces",
    operation="getSpaces",
    summary="Spaces by ids, keys, type and status (cursor-paged)",
    params=["ids", "keys", "type", "status", "sort", "description-format", "cursor", "limit"],
)
def list_spaces(req):
    spaces = Space.objects.filter(world=req.world).select_related("homepage")
    ids = _numeric(req, req.param_list("ids"), "space id")
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
    space = store.space_by_id(req, _path_id(req))
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
    qs = store.pages(req).filter(space=space, status__in=_statuses(req, ["current", "archived"]))
    depth = (req.param("depth") or "all").lower()
    if depth not in ("all", "root"):
        raise req.error(400, f"Invalid value for depth: {depth}. Valid values: all, root.")
    if depth == "root":
        qs = qs.filter(parent__isnull=True)
    if req.param("title"):
        qs = qs.filter(title=req.param("title"))
    fmt = _body_format(req)
    rows, cursor = keyset_page(req, qs, PAGE_SORTS, "id")
    return results(req, [page_json(req, p, fmt) for p in rows], cursor)


# --- Pages ----------------------------------------------------------------------------------------


@routes.get(
    f"{V2}/pages",
    operation="getPages",
    summary="Pages by id, space, exact title and status (cursor-paged); body-format none/storage/...",
    params=["id", "space-id", *PAGE_LIST_PARAMS],
)
def list_pages(req):
    qs = store.pages(req).filter(status__in=_statuses(req, ["current", "archived"]))
    ids = _numeric(req, req.param_list("id"), "page id")
    if ids:
        qs = qs.filter(ext_id__in=ids)
    space_ids = _numeric(req, req.param_list("space-id"), "space id")
    if space_ids:
        qs = qs.filter(space__ext_id__in=space_ids)
    if req.param("title"):
        qs = qs.filter(title=req.param("title"))
    fmt = _body_format(req)
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
    space = store.space_by_id(req, space_id)
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
    page = store.create_page(req, space, title=title, body=storage, parent=parent, status=status)
    return page_json(req, page, "storage", single=True)


@routes.get(
    f"{V2}/pages/{{id}}",
    operation="getPageById",
    summary="One page; the body only when body-format asks for it",
    params=["body-format", "status", "get-draft", "version"],
)
def get_page(req):
    statuses = _statuses(req, ["current", "archived", "draft"])
    page = store.find_page(req, _path_id(req), statuses, PAGE_NOT_FOUND)
    fmt = _body_format(req)
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
    page = _page(req, ("current", "archived", "draft", "trashed"))
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
    page = _page(req, ("current", "archived", "draft", "trashed"))
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


# --- The tree around a page -----------------------------------------------------------------------


def _children(req, *, direct):
    page = _page(req)
    qs = Page.objects.filter(parent=page, status__in=_statuses(req, ["current", "archived"]))
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
    page = _page(req)
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
    page = _page(req)
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
    page = _page(req)
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
    page = _page(req, ("current", "draft"))
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
