"""The one Confluence page store behind v2 (/wiki/api/v2) and the classic v1 content API
(/wiki/rest/api): lookups, the page tree, bodies, and the writes with their change log.

Both APIs show the same pages with the same ids; what differs is only how they speak (request
and response shapes, error shapes), which lives in the confluence_v2_* and confluence_v1*
modules. Errors raised here use ``req.error``, so each API answers in its own shape.
"""

import base64
import functools
import html
import json

from django.db import connection
from django.db.models import Max

from simulator.adf import adf_to_text, is_adf
from simulator.models import Page, PageLabel, PageVersion, Space
from simulator.prepared import insert, prepared, raw_instances
from simulator.selectors import storage_to_text
from simulator.trace import write_row

DUPLICATE_TITLE = (
    "A page with this title already exists: A page already exists with the same TITLE in this space"
)
LABEL_PREFIXES = ("global", "my", "team")


# --- Times and links ------------------------------------------------------------------------------


def wiki_time(value):
    """``2026-01-05T09:00:00.000Z``, as both Confluence APIs write times."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def wiki_base(req):
    """The absolute base of the Confluence site: ``http://h:p/sim/<world>/wiki``."""
    return f"{req.base_url}/wiki"


def tiny_code(ext_id):
    """Confluence's short link code: the id's little-endian bytes in URL-safe base64."""
    raw = ext_id.to_bytes(max(1, (ext_id.bit_length() + 7) // 8), "little")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_links(page):
    """webui / editui / tinyui, relative to the site's /wiki base."""
    slug = "+".join(page.title.split()) or "Untitled"
    return {
        "webui": f"/spaces/{page.space.key}/pages/{page.ext_id}/{slug}",
        "editui": f"/pages/resumedraft.action?draftId={page.ext_id}",
        "tinyui": f"/x/{tiny_code(page.ext_id)}",
    }


# --- Lookups --------------------------------------------------------------------------------------


def pages(req):
    """The world's pages, with what rendering needs joined in (space, parent)."""
    return Page.objects.filter(world=req.world).select_related("space", "parent")


def find_page(req, ident, statuses, message):
    """The page with ext_id ``ident`` in one of ``statuses``; else a 404 saying ``message``."""
    text = str(ident).strip()
    page = pages(req).filter(ext_id=int(text), status__in=statuses).first() if text.isdecimal() else None
    if page is None:
        raise req.error(404, message)
    return page


def space_by_id(req, ident, new_title=None):
    """The world's space with ext_id ``ident``, its homepage loaded (None if there is none).

    ``new_title``: a page is about to be created with this title. On PostgreSQL the same statement
    then answers what the create asks next (``check_title_free``, ``last_position``): whether a
    current page of the space has the title, and the last position at the root and under the
    homepage, kept on the space as ``for_new_page``."""
    text = str(ident).strip()
    if not text.isdecimal():
        return None
    ahead = new_title is not None and connection.vendor == "postgresql"
    sql = prepared(_space_sql(connection.vendor, ahead))
    found = raw_instances(Space, sql, [*([new_title] if ahead else []), req.world.pk, int(text)])
    if not found:
        return None
    space = found[0]
    if ahead:
        last = {None: space.last_at_root}
        if space.homepage_id is not None:
            last[space.homepage_id] = space.last_under_homepage
        space.for_new_page = {"title": new_title, "taken": space.new_title_taken, "last": last}
    values = [getattr(space, f"homepage__{c}") for c in _HOMEPAGE_COLUMNS]
    # The homepage as select_related(...).only(...) would give it (from_db takes the values in the
    # model's field order, as _HOMEPAGE_COLUMNS lists them).
    homepage = Page.from_db(connection.alias, _HOMEPAGE_COLUMNS, values) if values[0] is not None else None
    space._state.fields_cache["homepage"] = homepage
    return space


# Page create and update begin with this read: SQL built once (Django's query building cost more
# than the query), the homepage's row joined beside the space's. Of the homepage, the columns that
# need no converter (a joined column gets none: SQLite would give its dates as text) and not its
# body; the others load if asked for.
_HOMEPAGE_COLUMNS = tuple(
    f.attname
    for f in Page._meta.concrete_fields
    if f.get_internal_type() != "DateTimeField" and f.attname != "body"
)


@functools.cache
def _space_sql(vendor, for_new_page=False):
    qn = connection.ops.quote_name
    columns = [f"s.{qn(f.column)}" for f in Space._meta.concrete_fields]
    for name in _HOMEPAGE_COLUMNS:
        columns.append(f"h.{qn(Page._meta.get_field(name).column)} AS {qn('homepage__' + name)}")
    if for_new_page:  # PostgreSQL: the title test is the one Django writes for title__iexact there
        pages = qn(Page._meta.db_table)
        columns += [
            f"EXISTS (SELECT 1 FROM {pages} t WHERE t.space_id = s.id AND t.status = 'current' "  # noqa: S608
            "AND UPPER(t.title::text) = UPPER(%s)) AS new_title_taken",
            f"(SELECT MAX(position) FROM {pages} r WHERE r.space_id = s.id AND r.parent_id IS NULL) "  # noqa: S608
            "AS last_at_root",
            f"(SELECT MAX(position) FROM {pages} u WHERE u.space_id = s.id "  # noqa: S608
            "AND u.parent_id = s.homepage_id) AS last_under_homepage",
        ]
    return (
        f"SELECT {', '.join(columns)} FROM {qn(Space._meta.db_table)} s "  # noqa: S608
        f"LEFT JOIN {qn(Page._meta.db_table)} h ON h.id = s.homepage_id "
        "WHERE s.world_id = %s AND s.ext_id = %s"
    )


def space_by_key(req, key):
    return Space.objects.filter(world=req.world, key=str(key).strip()).select_related("homepage").first()


def tree(spaces):
    """{page pk: (parent pk, ext_id, title, status)} of every page of ``spaces``, in one query."""
    rows = Page.objects.filter(space__in=spaces).values_list("pk", "parent_id", "ext_id", "title", "status")
    return {pk: (parent, ext_id, title, status) for pk, parent, ext_id, title, status in rows}


def ancestor_pks(page, nodes):
    """The pks of the page's ancestors, root first (``nodes`` from ``tree``)."""
    chain, seen = [], {page.pk}
    parent = page.parent_id
    while parent is not None and parent in nodes and parent not in seen:
        chain.append(parent)
        seen.add(parent)
        parent = nodes[parent][0]
    return chain[::-1]


def parent_page(req, space, ident, moving=None):
    """The page named by ``ident`` as a parent in ``space`` (400 otherwise): it must be a current
    page of the same space, and not ``moving`` itself nor one of its descendants."""
    text = str(ident).strip()
    parent = (
        Page.objects.filter(world=req.world, ext_id=int(text)).select_related("space").first()
        if text.isdecimal()
        else None
    )
    if parent is None or parent.status in ("trashed", "deleted"):
        raise req.error(400, f"The parent page {text} does not exist.")
    if parent.space_id != space.pk:
        raise req.error(
            400, f"The parent page {text} is not in space {space.key}; a parent must be in the same space."
        )
    if moving is not None:
        nodes = tree([space])
        if parent.pk == moving.pk or moving.pk in ancestor_pks(parent, nodes):
            raise req.error(400, "A page cannot be moved below itself or one of its descendants.")
    return parent


def check_title_free(req, space, title, page=None):
    """Titles are unique among the current pages of a space."""
    ahead = getattr(space, "for_new_page", None)
    if page is None and ahead is not None and ahead["title"] == title:  # read with the space
        if ahead["taken"]:
            raise req.error(400, DUPLICATE_TITLE)
        return
    taken = Page.objects.filter(space=space, status="current", title__iexact=title)
    if page is not None:
        taken = taken.exclude(pk=page.pk)
    if taken.exists():
        raise req.error(400, DUPLICATE_TITLE)


# --- Bodies ---------------------------------------------------------------------------------------


def storage_from(req, representation, value):
    """A body in ``representation`` as storage format (what the store keeps); 400 if unusable."""
    representation = (representation or "storage").lower()
    if representation == "atlas_doc_format":
        doc = value
        if isinstance(value, str):
            try:
                doc = json.loads(value)
            except ValueError:
                raise req.error(400, "The atlas_doc_format body is not valid JSON.") from None
        if not is_adf(doc):
            raise req.error(400, "The atlas_doc_format body is not an Atlassian document.")
        return paragraphs(adf_to_text(doc) or "")
    if not isinstance(value, str):
        raise req.error(400, "The body value must be a string.")
    if representation in ("storage", "editor", "editor2"):
        return value
    if representation in ("wiki", "plain"):
        return paragraphs(value)
    raise req.error(400, f"The body representation '{representation}' is not supported; use storage.")


def paragraphs(text):
    """Plain text as storage format: one paragraph per line."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n") if line.strip())


def nested_body(req, body):
    """``{"storage": {"value", "representation"?}}`` (or another representation's key) as
    storage format; None when no body was given."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise req.error(400, "The body must be an object.")
    for key in ("storage", "editor", "editor2", "atlas_doc_format", "wiki", "plain"):
        if key in body:
            inner = body[key]
            if not isinstance(inner, dict) or "value" not in inner:
                raise req.error(400, f"The body's {key} must be an object with a value.")
            return storage_from(req, inner.get("representation") or key, inner["value"])
    raise req.error(400, "The body must carry a storage value.")


def body_as(page_body, fmt):
    """The stored body shown in representation ``fmt`` (``{"representation", "value"}``)."""
    if fmt == "atlas_doc_format":
        from simulator.adf import text_to_adf

        doc = text_to_adf(storage_to_text(page_body)) or {"type": "doc", "version": 1, "content": []}
        return {"representation": fmt, "value": json.dumps(doc)}
    if fmt in ("plain",):
        return {"representation": fmt, "value": storage_to_text(page_body)}
    return {"representation": fmt, "value": page_body}


# --- Writes ---------------------------------------------------------------------------------------


def page_state(page, parent=None):
    """What the change log keeps of a page, field by field."""
    parent = parent if parent is not None else page.parent
    return {
        "title": page.title,
        "status": page.status,
        "parent": str(parent.ext_id) if parent else None,
        "body": page.body,
        "version": page.version,
    }


def create_page(req, space, *, title, body, parent, status, held=False):
    """A new page at version 1; ids from the world counter, times from its clock. ``held``: the
    caller needs no primary key of the page, so its INSERT may go out with the call's trace
    statement (simulator.trace.write_row)."""
    last = last_position(space, parent)
    page = Page(
        world=req.world,
        ext_id=req.world.allocate_ids(),
        space=space,
        parent=parent,
        title=title,
        body=body or "",
        status=status,
        position=0 if last is None else last + 1,
        author=req.user,
        owner=req.user,
        created=req.now,
        version=1,
        version_author=req.user,
        version_created=req.now,
    )
    write_row(page) if held else insert(page)
    req.record_create("page", page.ext_id, {"space": space.key, **page_state(page)})
    return page


def last_position(space, parent):
    """The highest position among the pages under ``parent`` (None: the space's root) in ``space``;
    None when there are none. SQL built once: it runs at every page create."""
    ahead = getattr(space, "for_new_page", None)
    parent_pk = parent.pk if parent is not None else None
    if ahead is not None and parent_pk in ahead["last"]:  # read with the space
        return ahead["last"][parent_pk]
    sql = _last_position_sql(connection.vendor, parent is None)
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), [space.pk] if parent is None else [space.pk, parent.pk])
        return cursor.fetchone()[0]


@functools.cache
def _last_position_sql(vendor, at_root):
    qn = connection.ops.quote_name
    parent = "IS NULL" if at_root else "= %s"
    return f"SELECT MAX(position) FROM {qn(Page._meta.db_table)} WHERE space_id = %s AND parent_id {parent}"  # noqa: S608


def update_page(req, page, *, title=None, body=None, status=None, parent=False, version, message=""):
    """Write a new version of ``page`` (the old one kept as a PageVersion). ``parent`` False
    keeps the parent; a Page moves the page under it; None moves it to the space's root."""
    before = page_state(page)
    PageVersion.objects.create(
        world=req.world,
        page=page,
        number=page.version,
        title=page.title,
        body=page.body,
        message=page.version_message,
        author_id=page.version_author_id,
        created=page.version_created,
    )
    if title is not None:
        page.title = title
    if body is not None:
        page.body = body
    if status is not None:
        page.status = status
    if parent is not False and (parent.pk if parent else None) != page.parent_id:
        last = Page.objects.filter(space_id=page.space_id, parent=parent).aggregate(last=Max("position"))[
            "last"
        ]
        page.parent = parent
        page.position = 0 if last is None else last + 1
    page.version = version
    page.version_message = message or ""
    page.version_author = req.user
    page.version_created = req.now
    page.save()
    req.record_update("page", page.ext_id, before, page_state(page))
    return page


def trash_page(req, page):
    """To the trash; its children move up to its parent, as Confluence does."""
    children = list(Page.objects.filter(parent=page).exclude(status="trashed").order_by("position", "ext_id"))
    if children:
        Page.objects.filter(pk__in=[c.pk for c in children]).update(parent=page.parent)
        new_parent = str(page.parent.ext_id) if page.parent else None
        for child in children:
            req.record("update", "page", child.ext_id, "parent", str(page.ext_id), new_parent)
    page.status = "trashed"
    page.save(update_fields=["status"])
    req.record("update", "page", page.ext_id, "status", "current", "trashed")


def purge_page(req, page):
    """Gone for good (versions and labels with it)."""
    req.record_delete(
        "page", page.ext_id, {"title": page.title, "space": page.space.key, "status": page.status}
    )
    Page.objects.filter(parent=page).update(parent=page.parent)
    page.delete()


def add_labels(req, page, wanted):
    """Add ``wanted`` [(prefix, name)] to the page (names lower-cased, no spaces); existing ones
    are kept once. Returns every label of the page."""
    existing = list(PageLabel.objects.filter(page=page).order_by("name", "ext_id"))
    have = {(label.prefix, label.name) for label in existing}
    new = []
    for prefix, name in wanted:
        name = str(name or "").strip().lower()
        prefix = str(prefix or "global").strip().lower()
        if not name or any(ch.isspace() for ch in name):
            raise req.error(400, f"The label '{name}' is not valid: labels are single words.")
        if prefix not in LABEL_PREFIXES:
            raise req.error(400, f"The label prefix '{prefix}' is not valid; use global.")
        if (prefix, name) not in have:
            have.add((prefix, name))
            new.append((prefix, name))
    if new:
        first = req.world.allocate_ids(len(new))
        created = PageLabel.objects.bulk_create(
            PageLabel(world=req.world, ext_id=first + n, page=page, prefix=prefix, name=name)
            for n, (prefix, name) in enumerate(new)
        )
        before = sorted(label.name for label in existing)
        after = sorted(before + [name for _, name in new])
        req.record_update("page", page.ext_id, {"labels": before}, {"labels": after})
        existing = sorted(existing + list(created), key=lambda label: (label.name, label.ext_id))
    return existing
