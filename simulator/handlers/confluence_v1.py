"""The classic Confluence REST v1 content API (/wiki/rest/api), what ``atlassian-python-api``'s
default ``Confluence`` client and most existing scripts use, over the same page store as v2.

Lists are offset-paged (``start``, ``limit``) with an absolute-path ``_links.next`` that carries
the world's mount (the client joins it to scheme://host only). ``ancestors`` come from the parent
chain, root first. Errors use the v1 shape ``{"statusCode", "data", "message", "reason"}``.
"""

from urllib.parse import urlencode, urlsplit

from simulator.handlers import confluence_pages as store
from simulator.handlers.jira_render import avatar_urls
from simulator.models import PageLabel
from simulator.routing import CONFLUENCE_V1, Routes, no_content
from simulator.world_config import config_for

routes = Routes(api=CONFLUENCE_V1)
V1 = "/wiki/rest/api"
# What GET content/{id} expands when not told otherwise; the explicit ``expand`` adds to it.
DEFAULT_EXPAND = {"space", "history", "version"}
CONTENT_BODY = {
    "type": "object",
    "required": ["type", "title", "space"],
    "properties": {
        "type": {"type": "string", "enum": ["page"]},
        "title": {"type": "string"},
        "status": {"type": "string"},
        "space": {"type": "object", "properties": {"key": {"type": "string"}}},
        "ancestors": {"type": "array", "items": {"type": "object", "properties": {"id": {}}}},
        "body": {"type": "object"},
        "metadata": {"type": "object"},
    },
}
CONTENT_UPDATE = {
    "type": "object",
    "required": ["version"],
    "properties": {
        **CONTENT_BODY["properties"],
        "version": {"type": "object", "properties": {"number": {"type": "integer"}, "minorEdit": {}}},
    },
}


def _not_found(ident):
    return f"No content found with id: ContentId{{id={ident}}}"


# --- Rendering ------------------------------------------------------------------------------------


def _links_context(req):
    base = store.wiki_base(req)
    return {"base": base, "context": urlsplit(base).path}


def user_json(req, user_pk):
    user = config_for(req.world).user_by_pk.get(user_pk)
    if user is None:
        return {"type": "anonymous", "displayName": "Anonymous"}
    return {
        "type": "known",
        "accountId": user.account_id,
        "accountType": "atlassian",
        "email": user.email,
        "publicName": user.display_name,
        "displayName": user.display_name,
        "profilePicture": {
            "path": avatar_urls(req.base_url, "user", user.account_id)["48x48"],
            "width": 48,
            "height": 48,
            "isDefault": True,
        },
        "isExternalCollaborator": False,
        "_links": {"self": f"{store.wiki_base(req)}/rest/api/user?accountId={user.account_id}"},
    }


def version_json(req, page):
    return {
        "by": user_json(req, page.version_author_id),
        "when": store.wiki_time(page.version_created),
        "friendlyWhen": store.wiki_time(page.version_created),
        "message": page.version_message,
        "number": page.version,
        "minorEdit": False,
        "_links": {"self": f"{store.wiki_base(req)}/rest/api/content/{page.ext_id}/version/{page.version}"},
    }


def history_json(req, page):
    return {
        "latest": page.status != "historical",
        "createdBy": user_json(req, page.author_id),
        "createdDate": store.wiki_time(page.created),
        "lastUpdated": version_json(req, page),
        "_links": {"self": f"{store.wiki_base(req)}/rest/api/content/{page.ext_id}/history"},
    }


def space_json(req, space, expand=()):
    out = {
        "id": space.ext_id,
        "key": space.key,
        "name": space.name,
        "type": space.type,
        "status": space.status,
        "_expandable": {},
        "_links": {
            "webui": f"/spaces/{space.key}",
            "self": f"{store.wiki_base(req)}/rest/api/space/{space.key}",
        },
    }
    if "description" in expand or "description.plain" in expand:
        out["description"] = {"plain": {"value": space.description, "representation": "plain"}}
    else:
        out["_expandable"]["description"] = ""
    if "homepage" in expand and space.homepage_id:
        out["homepage"] = _brief(req, space.homepage)
    else:
        out["_expandable"]["homepage"] = (
            f"/rest/api/content/{space.homepage.ext_id}" if space.homepage_id else ""
        )
    return out


def _brief(req, page):
    return {
        "id": str(page.ext_id),
        "type": "page",
        "status": page.status,
        "title": page.title,
        "_links": {"self": f"{store.wiki_base(req)}/rest/api/content/{page.ext_id}"},
    }


def parse_expand(req, default=()):
    wanted = set(default)
    for item in req.param_list("expand"):
        wanted.add(item)
        parts = item.split(".")
        wanted.update(".".join(parts[: n + 1]) for n in range(len(parts)))
    return wanted


def content_json(req, page, expand, nodes=None):
    """A page as v1 shows it; ``nodes`` (from ``store.tree``) when ``ancestors`` is expanded."""
    out = {"id": str(page.ext_id), "type": "page", "status": page.status, "title": page.title}
    expandable = {}
    if "space" in expand:
        out["space"] = space_json(req, page.space)
    else:
        expandable["space"] = f"/rest/api/space/{page.space.key}"
    if "history" in expand:
        out["history"] = history_json(req, page)
    else:
        expandable["history"] = f"/rest/api/content/{page.ext_id}/history"
    if "version" in expand:
        out["version"] = version_json(req, page)
    else:
        expandable["version"] = ""
    if "ancestors" in expand:
        nodes = nodes if nodes is not None else store.tree([page.space_id])
        out["ancestors"] = [
            {
                "id": str(nodes[pk][1]),
                "type": "page",
                "status": nodes[pk][3],
                "title": nodes[pk][2],
                "_links": {"self": f"{store.wiki_base(req)}/rest/api/content/{nodes[pk][1]}"},
            }
            for pk in store.ancestor_pks(page, nodes)
        ]
    else:
        expandable["ancestors"] = ""
    if "body" in expand:
        out["body"] = {}
        for fmt in ("storage", "view", "export_view", "styled_view", "editor", "atlas_doc_format"):
            if f"body.{fmt}" in expand:
                out["body"][fmt] = {
                    **store.body_as(page.body, fmt),
                    "embeddedContent": [],
                    "_expandable": {"content": f"/rest/api/content/{page.ext_id}"},
                }
        out["body"]["_expandable"] = {
            fmt: ""
            for fmt in ("editor", "view", "export_view", "styled_view", "storage")
            if fmt not in out["body"]
        }
    else:
        expandable["body"] = ""
    if "metadata.labels" in expand:
        labels = sorted(page.labels.all(), key=lambda label: (label.name, label.ext_id))
        out["metadata"] = {"labels": label_page(req, page, labels, 0, 200)}
    out["extensions"] = {"position": page.position}
    expandable.update({"children": f"/rest/api/content/{page.ext_id}/child", "container": ""})
    out["_expandable"] = expandable
    links = store.page_links(page)
    out["_links"] = {
        "webui": links["webui"],
        "edit": links["editui"],
        "tinyui": links["tinyui"],
        "self": f"{store.wiki_base(req)}/rest/api/content/{page.ext_id}",
        "collection": "/rest/api/content",
        **_links_context(req),
    }
    return out


def offset_results(req, path, items, start, limit, more, extra=None):
    """v1's ``{"results", "start", "limit", "size", "_links"}``; ``next`` is an absolute path
    with the world's mount, because clients join it to scheme://host only."""
    links = {**_links_context(req), "self": f"{store.wiki_base(req)}{path}"}
    if more:
        query = [(k, v) for k, values in req.params.items() if k not in ("start", "limit") for v in values]
        query += [("start", start + limit), ("limit", limit)]
        links["next"] = f"{urlsplit(store.wiki_base(req)).path}{path}?{urlencode(query)}"
    if start > 0:
        query = [(k, v) for k, values in req.params.items() if k not in ("start", "limit") for v in values]
        query += [("start", max(0, start - limit)), ("limit", limit)]
        links["prev"] = f"{urlsplit(store.wiki_base(req)).path}{path}?{urlencode(query)}"
    return {
        "results": items,
        "start": start,
        "limit": limit,
        "size": len(items),
        **(extra or {}),
        "_links": links,
    }


def offset_params(req, default_limit=25, maximum=200):
    return req.int_param("start", 0), req.int_param("limit", default_limit, minimum=1, maximum=maximum)


def _json_body(req):
    if not isinstance(req.body, dict):
        raise req.error(400, "The request body must be a JSON object.")
    return req.body


def _content(req, statuses=("current",)):
    ident = req.path_params["id"]
    wanted = req.param_list("status")
    if wanted and "any" not in wanted:
        statuses = wanted
    elif wanted:
        statuses = ("current", "draft", "trashed")
    return store.find_page(req, ident, statuses, _not_found(ident))


# --- Spaces ---------------------------------------------------------------------------------------


@routes.get(f"{V1}/space/{{spaceKey}}", operation="getSpace", summary="One space by key", params=["expand"])
def get_space(req):
    space = store.space_by_key(req, req.path_params["spaceKey"])
    if space is None:
        raise req.error(404, f"No space with key : {req.path_params['spaceKey']}")
    return space_json(req, space, parse_expand(req))


# --- Content --------------------------------------------------------------------------------------


def _ancestor_parent(req, space, ancestors, moving=None):
    """The direct parent named by v1's ``ancestors`` ([{"id"}], the last one is the parent)."""
    if not isinstance(ancestors, list) or not all(isinstance(a, dict) and a.get("id") for a in ancestors):
        raise req.error(400, 'ancestors must be a list like [{"id": "<parent page id>"}].')
    return store.parent_page(req, space, ancestors[-1]["id"], moving=moving)


@routes.post(
    f"{V1}/content",
    operation="createContent",
    summary="Create a page (type page, title, space.key, body.storage, ancestors [{id}] = parent)",
    body_schema=CONTENT_BODY,
    params=["status", "expand"],
)
def create_content(req):
    body = _json_body(req)
    kind = body.get("type", "page")
    if kind != "page":
        raise req.error(400, f"Content type '{kind}' is not supported here; only pages.")
    space_ref = body.get("space")
    if not isinstance(space_ref, dict) or not space_ref.get("key"):
        raise req.error(400, "A space key is required: space.key.")
    space = store.space_by_key(req, space_ref["key"])
    if space is None:
        raise req.error(404, f"No space with key : {space_ref['key']}")
    status = str(body.get("status") or req.param("status") or "current").lower()
    if status not in ("current", "draft"):
        raise req.error(400, f"Content status '{status}' is not valid; use current or draft.")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise req.error(400, "Title is required.")
    title = title.strip()
    if len(title) > 255:
        raise req.error(400, "Title must be at most 255 characters.")
    parent = _ancestor_parent(req, space, body["ancestors"]) if body.get("ancestors") else None
    storage = store.nested_body(req, body.get("body"))
    if status == "current":
        store.check_title_free(req, space, title)
    page = store.create_page(req, space, title=title, body=storage, parent=parent, status=status)
    return content_json(req, page, DEFAULT_EXPAND | {"body", "body.storage", "ancestors"} | parse_expand(req))


@routes.get(
    f"{V1}/content",
    operation="getContent",
    summary="Pages by spaceKey and exact title (offset-paged)",
    params=["type", "spaceKey", "title", "status", "expand", "start", "limit"],
)
def list_content(req):
    kind = req.param("type") or "page"
    start, limit = offset_params(req)
    statuses = req.param_list("status") or ["current"]
    qs = store.pages(req).filter(status__in=statuses)
    if kind != "page":
        qs = qs.none()  # blog posts are not simulated
    if req.param("spaceKey"):
        qs = qs.filter(space__key=req.param("spaceKey"))
    if req.param("title"):
        qs = qs.filter(title=req.param("title"))
    expand = parse_expand(req)
    if "metadata.labels" in expand:
        qs = qs.prefetch_related("labels")
    rows = list(qs.order_by("ext_id")[start : start + limit + 1])
    nodes = store.tree({p.space_id for p in rows}) if "ancestors" in expand and rows else None
    items = [content_json(req, p, expand, nodes) for p in rows[:limit]]
    return offset_results(req, "/rest/api/content", items, start, limit, len(rows) > limit)


@routes.get(
    f"{V1}/content/{{id}}",
    operation="getContentById",
    summary="One page; expand=body.storage,version,ancestors,space,history",
    params=["expand", "status", "version"],
)
def get_content(req):
    page = _content(req)
    expand = parse_expand(req, DEFAULT_EXPAND)
    return content_json(req, page, expand)


@routes.put(
    f"{V1}/content/{{id}}",
    operation="updateContent",
    summary="Update a page: version.number must be current+1 (else 409); ancestors move it",
    body_schema=CONTENT_UPDATE,
    params=["status"],
)
def update_content(req):
    page = _content(req, ("current", "draft", "trashed"))
    body = _json_body(req)
    if body.get("type", "page") != "page":
        raise req.error(400, "The content type cannot be changed.")
    version = body.get("version")
    number = version.get("number") if isinstance(version, dict) else None
    if isinstance(number, bool) or not isinstance(number, int | str) or not str(number).strip().isdecimal():
        raise req.error(400, "Must supply an incremented version when updating Content. No version supplied.")
    number = int(number)
    if number != page.version + 1:
        raise req.error(409, f"Version must be incremented on update. Current version is: {page.version}")
    status = body.get("status") or req.param("status")
    status = str(status).lower() if status else ("current" if page.status == "trashed" else None)
    if status is not None and status not in ("current", "draft"):
        raise req.error(400, f"Content status '{status}' is not valid; use current or draft.")
    title = body.get("title")
    if title is not None:
        if not isinstance(title, str) or not title.strip():
            raise req.error(400, "Title cannot be empty.")
        title = title.strip()
    parent = False
    if body.get("ancestors"):
        new_parent = _ancestor_parent(req, page.space, body["ancestors"], moving=page)
        parent = False if new_parent.pk == page.parent_id else new_parent
    if (status or page.status) == "current":
        store.check_title_free(req, page.space, title or page.title, page)
    message = version.get("message") or ""
    page = store.update_page(
        req,
        page,
        title=title,
        body=store.nested_body(req, body.get("body")),
        status=status,
        parent=parent,
        version=number,
        message=str(message),
    )
    return content_json(req, page, DEFAULT_EXPAND | {"body", "body.storage", "ancestors"})


@routes.delete(
    f"{V1}/content/{{id}}",
    operation="deleteContent",
    summary="Trash a page; with status=trashed purge a trashed one",
    params=["status"],
)
def delete_content(req):
    purge = (req.param("status") or "").lower() == "trashed"
    page = _content(req, ("trashed",) if purge else ("current", "draft"))
    if purge or page.status == "draft":
        store.purge_page(req, page)
    else:
        store.trash_page(req, page)
    return no_content()


@routes.get(
    f"{V1}/content/{{id}}/history",
    operation="getHistoryForContent",
    summary="Who created a page and when; lastUpdated carries the current version number",
)
def content_history(req):
    page = _content(req, ("current", "draft", "trashed"))
    history = history_json(req, page)
    history["_links"].update(_links_context(req))
    return history


@routes.get(
    f"{V1}/content/{{id}}/child/page",
    operation="getContentChildrenByType",
    summary="The child pages of a page (offset-paged)",
    params=["expand", "start", "limit"],
)
def child_pages(req):
    page = _content(req)
    start, limit = offset_params(req)
    expand = parse_expand(req)
    qs = store.pages(req).filter(parent=page, status="current").order_by("position", "ext_id")
    if "metadata.labels" in expand:
        qs = qs.prefetch_related("labels")
    rows = list(qs[start : start + limit + 1])
    nodes = store.tree([page.space_id]) if "ancestors" in expand else None
    items = [content_json(req, p, expand, nodes) for p in rows[:limit]]
    return offset_results(
        req, f"/rest/api/content/{page.ext_id}/child/page", items, start, limit, len(rows) > limit
    )


# --- Labels ---------------------------------------------------------------------------------------


def label_json(label):
    return {"prefix": label.prefix, "name": label.name, "id": str(label.ext_id), "label": label.name}


def label_page(req, page, labels, start, limit):
    items = [label_json(label) for label in labels[start : start + limit]]
    return {
        "results": items,
        "start": start,
        "limit": limit,
        "size": len(items),
        "_links": {
            "self": f"{store.wiki_base(req)}/rest/api/content/{page.ext_id}/label",
            **_links_context(req),
        },
    }


@routes.post(
    f"{V1}/content/{{id}}/label",
    operation="addLabelsToContent",
    summary="Add labels: [{prefix, name}] or one {prefix, name}",
    body_schema={
        "type": "array",
        "items": {"type": "object", "required": ["name"], "properties": {"prefix": {}, "name": {}}},
    },
)
def add_labels(req):
    page = _content(req, ("current", "draft"))
    items = req.body if isinstance(req.body, list) else [req.body]
    if not items or not all(isinstance(i, dict) and i.get("name") for i in items):
        raise req.error(400, 'Give labels as [{"prefix": "global", "name": "..."}].')
    labels = store.add_labels(req, page, [(i.get("prefix") or "global", i["name"]) for i in items])
    return label_page(req, page, labels, 0, 200)


@routes.get(
    f"{V1}/content/{{id}}/label",
    operation="getLabelsForContent",
    summary="The labels of a page",
    params=["prefix", "start", "limit"],
)
def list_labels(req):
    page = _content(req, ("current", "draft"))
    start, limit = offset_params(req, default_limit=200, maximum=200)
    labels = PageLabel.objects.filter(page=page).order_by("name", "ext_id")
    if req.param("prefix"):
        labels = labels.filter(prefix=req.param("prefix"))
    return label_page(req, page, list(labels), start, limit)
