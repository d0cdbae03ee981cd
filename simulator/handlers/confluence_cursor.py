"""Confluence v2's cursor paging: keyset cursors (the sort values of the last row given, so a
page never repeats or skips rows while others are written) and the ``{"results", "_links"}``
envelope with a relative ``_links.next``, ``_links.base`` and a ``Link`` header."""

import base64
import binascii
import datetime as dt
import json
from urllib.parse import urlencode

from django.db.models import Q

from simulator.handlers.confluence_pages import wiki_base
from simulator.routing import SimResponse

DATETIME_FIELDS = {"created", "version_created"}


def _sort(req, sorts, default):
    text = req.param("sort") or default
    descending = text.startswith("-")
    if text.lstrip("-") not in sorts:
        raise req.error(
            400, f"Invalid value for sort: {text}. Valid values: {', '.join(sorts)} (- for descending)."
        )
    return text, sorts[text.lstrip("-")], descending


def _encode(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _decode_cursor(req, token, sort_text, columns):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data["sort"] != sort_text or len(data["after"]) != len(columns):
            raise ValueError("the cursor belongs to another sort")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise req.error(400, "The cursor is invalid or expired.") from None
    return [
        dt.datetime.fromisoformat(value) if column in DATETIME_FIELDS else value
        for column, value in zip(columns, data["after"], strict=True)
    ]


def keyset_page(req, queryset, sorts, default_sort):
    """(rows, next cursor or None): ``limit`` rows after the ``cursor`` in the ``sort`` order."""
    sort_text, columns, descending = _sort(req, sorts, default_sort)
    limit = req.int_param("limit", 25, minimum=1, maximum=250)
    ordered = queryset.order_by(*[f"-{c}" if descending else c for c in columns])
    if req.param("cursor"):
        after = _decode_cursor(req, req.param("cursor"), sort_text, columns)
        op = "lt" if descending else "gt"
        condition = Q()
        for n, column in enumerate(columns):
            step = Q(**{c: v for c, v in zip(columns[:n], after[:n], strict=True)}) & Q(
                **{f"{column}__{op}": after[n]}
            )
            condition |= step
        ordered = ordered.filter(condition)
    rows = list(ordered[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    after = [_encode(getattr(last, c)) for c in columns]
    token = base64.urlsafe_b64encode(json.dumps({"sort": sort_text, "after": after}).encode()).decode()
    return rows[:limit], token.rstrip("=")


def results(req, items, cursor):
    """``{"results", "_links": {"next"?, "base"}}`` plus the ``Link`` header of the next page."""
    links = {}
    headers = {}
    if cursor:
        query = [(k, v) for k, values in req.params.items() if k != "cursor" for v in values]
        query.append(("cursor", cursor))
        links["next"] = f"{req.path}?{urlencode(query)}"
        headers["Link"] = f'<{links["next"]}>; rel="next", <{wiki_base(req)}>; rel="base"'
    links["base"] = wiki_base(req)
    return SimResponse(200, {"results": items, "_links": links}, headers)
