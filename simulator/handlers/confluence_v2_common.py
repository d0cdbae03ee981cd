"""Confluence Cloud REST v2 (/wiki/api/v2): what the space, page and tree handlers share — the
request schemas, rendering of spaces, pages and versions, and parameter parsing.

Errors use the v2 shape ``{"errors": [{"status", "code", "title", "detail"}]}``.
"""

from simulator.handlers import confluence_pages as store
from simulator.world_config import config_for

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


def account_of(req, user_pk):
    user = config_for(req.world).user_by_pk.get(user_pk)
    return user.account_id if user else None


def version_json(req, *, number, message, author_pk, created):
    return {
        "number": number,
        "message": message,
        "minorEdit": False,
        "authorId": account_of(req, author_pk),
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
            "authorId": account_of(req, page.author_id),
            "ownerId": account_of(req, page.owner_id),
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


def body_format(req):
    fmt = req.param("body-format")
    if fmt is None or fmt == "":
        return None
    fmt = fmt.lower()
    if fmt not in BODY_FORMATS:
        raise req.error(
            400, f"Invalid value for body-format: {fmt}. Valid values: {', '.join(BODY_FORMATS)}."
        )
    return fmt


def numeric_params(req, values, name):
    out = []
    for value in values:
        if not value.isdecimal():
            raise req.error(400, f"The {name} '{value}' is not a number.")
        out.append(int(value))
    return out


def path_id(req):
    text = req.path_params["id"]
    if not text.isdecimal():
        raise req.error(400, f"The id '{text}' is not a number.")
    return int(text)


def statuses_param(req, default):
    wanted = [s.lower() for s in req.param_list("status")]
    allowed = {"current", "archived", "deleted", "trashed", "draft", "historical", "any"}
    bad = [s for s in wanted if s not in allowed]
    if bad:
        raise req.error(400, f"Invalid value for status: {bad[0]}.")
    if "any" in wanted:
        return ["current", "archived", "draft", "trashed"]
    return wanted or list(default)


def path_page(req, statuses=("current", "archived", "draft")):
    return store.find_page(req, path_id(req), statuses, PAGE_NOT_FOUND)
