"""The simulator's request router: one route table, two doors (HTTP and in-process).

A handler is a plain function ``handler(req: SimRequest)`` registered on a ``Routes`` list:

    routes = Routes(api="jira")

    @routes.get("/rest/api/{version}/issue/{issueIdOrKey}", operation="getIssue", summary="Get issue")
    def get_issue(req):
        issue = ...                      # raise jira_error(404, "...") when it is not there
        return {"id": ..., "key": ...}   # dict/list -> 200 JSON, None -> 204, or a SimResponse

``dispatch()`` matches a method + path against the table, ticks the world's clock once, runs the
handler in a transaction (rolled back when it fails), turns errors into Atlassian-shaped answers
(never a 500) and appends the call, with the changes the handler recorded, to the world's trace
(simulator.trace), in the same transaction as the handler's writes.
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from simulator.models import World
from simulator.trace import (
    JSONText,
    TraceStatementFailed,
    held_writes,
    hold_writes,
    reads_outside_transaction,
    release_writes,
    write_call,
)

log = logging.getLogger(__name__)

# The API families; each has its own error shape.
JIRA = "jira"  # platform v2/v3/latest and agile 1.0: {"errorMessages", "errors"}
CONFLUENCE_V2 = "confluence-v2"  # {"errors": [{"status", "code", "title", "detail"}]}
CONFLUENCE_V1 = "confluence-v1"  # {"statusCode", "data", "message", "reason"}

REST_VERSIONS = ("3", "2", "latest")

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
}
CODES = {  # Confluence v2 error codes as Cloud spells them
    400: "INVALID_REQUEST_PARAMETER",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
}


# --- Responses and errors -------------------------------------------------------------------------


@dataclass
class SimResponse:
    status: int = 200
    body: Any = None  # JSON-able; None = an empty body (204, or 201 for POST /issueLink)
    headers: dict = field(default_factory=dict)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def text(self):
        """The body as JSON text ("" for none), encoded once: the trace keeps the same text the
        door sends (a search's answer is 16 kB to encode)."""
        if self._text is None:
            self._text = "" if self.body is None else json.dumps(self.body)
        return self._text


def created(body=None):
    return SimResponse(201, body)


def no_content():
    return SimResponse(204, None)


class ApiError(Exception):
    """Raised by a handler to answer with an error; ``body`` is already in its API's shape."""

    def __init__(self, status, body, headers=None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self):
        return SimResponse(self.status, self.body, dict(self.headers))


def jira_error(status, messages=(), errors=None):
    """Jira's ErrorCollection: request-level messages and field-keyed messages, both keys present."""
    if isinstance(messages, str):
        messages = [messages]
    return ApiError(status, {"errorMessages": list(messages), "errors": dict(errors or {})})


def confluence_v2_error(status, title, detail=None, code=None):
    return ApiError(
        status,
        {
            "errors": [
                {
                    "status": status,
                    "code": code or CODES.get(status, "ERROR"),
                    "title": title,
                    "detail": detail,
                }
            ]
        },
    )


def confluence_v1_error(status, message):
    return ApiError(
        status,
        {
            "statusCode": status,
            "data": {
                "authorized": status not in (401, 403),
                "valid": False,
                "errors": [],
                "successful": False,
            },
            "message": message,
            "reason": REASONS.get(status, "Error"),
        },
    )


def error_for(api, status, message):
    """An error in the shape of ``api`` (one of JIRA, CONFLUENCE_V2, CONFLUENCE_V1)."""
    if api == CONFLUENCE_V2:
        return confluence_v2_error(status, message)
    if api == CONFLUENCE_V1:
        return confluence_v1_error(status, message)
    return jira_error(status, [message])


def api_of_path(path):
    """Which API family a path belongs to, for errors raised before any route matched."""
    if path.startswith("/wiki/api/v2"):
        return CONFLUENCE_V2
    if path.startswith("/wiki/"):
        return CONFLUENCE_V1
    return JIRA


# --- Query parameters -----------------------------------------------------------------------------


class QueryParams:
    """Multi-valued query parameters (``?fields=a&fields=b`` keeps both)."""

    def __init__(self, data=None):
        self._data = {}
        for key, value in (data or {}).items():
            values = value if isinstance(value, list | tuple) else [value]
            self._data[key] = [_param_text(v) for v in values if v is not None]

    def get(self, name, default=None):
        values = self._data.get(name)
        return values[-1] if values else default

    def getlist(self, name):
        return list(self._data.get(name, []))

    def __contains__(self, name):
        return bool(self._data.get(name))

    def items(self):
        return self._data.items()

    def as_json(self):
        """For the trace: single values as strings, repeated ones as lists."""
        return {k: (v[0] if len(v) == 1 else v) for k, v in self._data.items()}


def _param_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_bool(value, default=False):
    """Atlassian reads booleans case-insensitively; Python clients send ``True``/``False``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return default


# --- The request a handler sees -------------------------------------------------------------------


@dataclass
class SimRequest:
    world: World
    user: Any  # simulator.models.User
    method: str
    path: str  # below the world prefix, e.g. /rest/api/3/issue/OPS-1
    params: QueryParams
    body: Any
    path_params: dict
    base_url: str  # absolute URL of the world's mount, no trailing slash: http://h:p/sim/<slug>
    now: Any  # the world's clock for this call
    door: str = "client"
    route: Any = None
    changes: list = field(default_factory=list)

    @property
    def version(self):
        """The REST version of a Jira platform path: "3", "2" or "latest" (None elsewhere)."""
        return self.path_params.get("version")

    @property
    def adf(self):
        """Whether rich text is ADF (v3) rather than plain strings (v2 and latest)."""
        return self.version == "3"

    @property
    def api_url(self):
        """The absolute base of this call's Jira platform API, e.g. .../sim/w/rest/api/3."""
        return f"{self.base_url}/rest/api/{self.version or '3'}"

    def url(self, path):
        return self.base_url + path

    # Query parameters

    def param(self, name, default=None):
        return self.params.get(name, default)

    def param_list(self, name):
        """Repeated and comma-separated values together: ``?fields=a,b&fields=c`` -> [a, b, c]."""
        out = []
        for value in self.params.getlist(name):
            out.extend(part.strip() for part in value.split(",") if part.strip())
        return out

    def bool_param(self, name, default=False):
        return parse_bool(self.params.get(name), default)

    def int_param(self, name, default, minimum=0, maximum=None):
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.error(400, f"The value '{raw}' of parameter '{name}' is not a number.") from None
        if value < minimum:
            value = minimum
        if maximum is not None and value > maximum:
            value = maximum
        return value

    def error(self, status, message):
        """An ApiError in this route's API shape (to ``raise``)."""
        return error_for(self.route.api if self.route else api_of_path(self.path), status, message)

    # The change log

    def record(self, action, object_type, object_ref, field="", before=None, after=None):
        """Log that this call changed ``field`` of an object (written with the call's trace)."""
        self.changes.append((action, object_type, str(object_ref), field, before, after))

    def record_create(self, object_type, object_ref, values=None):
        """One row for the object, then one per initial field value given."""
        self.record("create", object_type, object_ref)
        for name, value in (values or {}).items():
            if value not in (None, "", [], {}):
                self.record("create", object_type, object_ref, name, None, value)

    def record_update(self, object_type, object_ref, before, after):
        """One row per field whose value differs between the two dicts."""
        for name in after:
            if before.get(name) != after[name]:
                self.record("update", object_type, object_ref, name, before.get(name), after[name])

    def record_delete(self, object_type, object_ref, before=None):
        self.record("delete", object_type, object_ref, before=before)


# --- Routes ---------------------------------------------------------------------------------------

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class Route:
    method: str
    pattern: str  # e.g. /rest/api/{version}/issue/{issueIdOrKey}
    handler: Any
    operation: str
    summary: str = ""
    api: str = JIRA
    body_schema: dict | None = None  # for the OpenAPI document
    params: tuple = ()  # query parameter names, for the OpenAPI document

    def __post_init__(self):
        self.method = self.method.upper()
        parts = []
        for segment in self.pattern.strip("/").split("/"):
            if segment == "{version}":
                parts.append("(?P<version>3|2|latest)")
            else:
                pieces = _PARAM.split(segment)  # literal, name, literal, name, ..., literal
                parts.append(
                    "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(pieces))
                )
        self.regex = re.compile("^/" + "/".join(parts) + "/?$")
        self.segments = self.pattern.strip("/").count("/") + 1
        # Literal segments win over parameters: /issue/createmeta before /issue/{issueIdOrKey}.
        self.specificity = tuple(1 if "{" in s else 0 for s in self.pattern.strip("/").split("/"))

    def match(self, path):
        m = self.regex.match(path)
        return m.groupdict() if m else None


class Routes(list):
    """A list of Route with decorators that register handlers into it."""

    def __init__(self, api=JIRA, routes=()):
        super().__init__(routes)
        self.api = api

    def route(self, method, pattern, *, operation, summary="", body_schema=None, params=()):
        def register(handler):
            self.append(
                Route(method, pattern, handler, operation, summary, self.api, body_schema, tuple(params))
            )
            return handler

        return register

    def get(self, pattern, **kwargs):
        return self.route("GET", pattern, **kwargs)

    def post(self, pattern, **kwargs):
        return self.route("POST", pattern, **kwargs)

    def put(self, pattern, **kwargs):
        return self.route("PUT", pattern, **kwargs)

    def delete(self, pattern, **kwargs):
        return self.route("DELETE", pattern, **kwargs)


class Router:
    """Matches paths against a route table; built once per table."""

    def __init__(self, routes):
        self.by_segments = {}
        for r in sorted(routes, key=lambda r: r.specificity):
            self.by_segments.setdefault(r.segments, []).append(r)

    def resolve(self, method, path):
        """(route, path_params) for the path and method; ApiError 404/405 when none fits."""
        segments = path.strip("/").count("/") + 1
        allowed = []
        for r in self.by_segments.get(segments, ()):
            params = r.match(path)
            if params is None:
                continue
            if r.method == method:
                return r, params
            allowed.append(r.method)
        api = api_of_path(path)
        if allowed:
            err = error_for(api, 405, f"Method '{method}' is not supported for this resource.")
            err.headers["Allow"] = ", ".join(sorted(set(allowed)))
            raise err
        raise error_for(api, 404, f"No API resource at '{path}'.")


_router = None


def get_router():
    global _router
    if _router is None:
        from simulator.routes import TABLE

        _router = Router(TABLE)
    return _router


# --- Dispatch -------------------------------------------------------------------------------------


def dispatch(
    world, user, method, path, params, body, door, base_url, *, body_error=None, lock=False, wait=True
):
    """Run one API call in ``world`` as ``user`` and return a SimResponse.

    ``params``: a dict of query parameters (values may be lists) or a QueryParams.
    ``body_error``: set by the HTTP door when the request body was not valid JSON.
    ``lock``: re-read and lock the world's row first (the HTTP door, where several processes may
    serve one world; the in-process client owns its World object and its counters).
    ``wait``: False lets a call whose one write is its trace statement return before that
    statement's answer is read (simulator.trace.UnansweredStatement; SimClient's ``wait``).

    One transaction per call: the handler's writes, the world's clock and id counter and the trace
    (simulator.trace) commit together. A call that fails is rolled back whole and its trace entry
    written in a transaction of its own, so the common case, a call that succeeds, needs no
    savepoint. If a trace statement sent without waiting failed, the next call raises
    TraceStatementFailed, the one exception that leaves this function.
    """
    started = time.perf_counter()
    method = method.upper()
    path = "/" + path.lstrip("/")
    params = params if isinstance(params, QueryParams) else QueryParams(params)
    base_url = base_url.rstrip("/")
    if _has_nul([path, params.as_json(), body]):
        # PostgreSQL stores no NUL in text or JSON, so the call is refused and traced without it.
        path, query, body = _without_nul([path, params.as_json(), body])
        params = QueryParams(query)
        body_error = "The request contains a NUL character (U+0000), which is not allowed."
    if world.is_template:
        # Templates are only ever forked: a call must not move their clock or write their trace.
        return error_for(api_of_path(path), 403, "This world is a template; fork it to use it.").response()

    ticks, next_ext_id = world.ticks, world.next_ext_id
    route = None
    holding = hold_writes()  # the handler's last writes go out with the trace (simulator.trace)
    reads = None
    try:
        with transaction.atomic():
            # Reads before the first write need no transaction: a call that writes only its
            # trace statement commits with it (simulator.trace.ReadsOutsideTransaction).
            reads = reads_outside_transaction()
            if lock:
                _reread_counters(world)
                ticks, next_ext_id = world.ticks, world.next_ext_id
            world.ticks += 1
            req = SimRequest(world, user, method, path, params, body, {}, base_url, world.now(), door)
            route, req.path_params = get_router().resolve(method, path)
            req.route = route
            if body_error is not None:
                raise req.error(400, body_error)
            response = _as_response(route.handler(req))
            _trace(world, req, response, route, started, held_writes(), reads, wait)
        return response
    except ApiError as err:
        response = err.response()
    except TraceStatementFailed:
        raise  # the previous call is lost: this world cannot answer for what it holds
    except Exception as exc:
        log.exception("simulator handler failed: %s %s", method, path)
        api = route.api if route else api_of_path(path)
        message = f"The request could not be processed ({type(exc).__name__})."
        response = error_for(api, 400, message).response()
    finally:
        release_writes(holding)  # what a failed call still held is dropped with its transaction
        if reads is not None:
            reads.end()
    # The call's writes were rolled back, the ids it allocated with them: its answer still ticks
    # the clock and goes to the trace.
    world.ticks, world.next_ext_id = ticks, next_ext_id
    with transaction.atomic():
        if lock:
            _reread_counters(world)
        world.ticks += 1
        req = SimRequest(world, user, method, path, params, body, {}, base_url, world.now(), door, route)
        _trace(world, req, response, route, started)
    return response


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return False


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _reread_counters(world):
    fresh = World.objects.select_for_update().only("ticks", "next_ext_id").get(pk=world.pk)
    world.ticks, world.next_ext_id = fresh.ticks, fresh.next_ext_id


def _trace(world, req, response, route, started, held=(), reads=None, wait=True):
    call = {
        "world": world.pk,
        "seq": world.ticks,  # one tick per call, so the clock's tick count numbers the calls
        "door": req.door,
        "user": req.user.pk if req.user is not None else None,
        "method": req.method,
        "path": req.path[:500],
        "query": req.params.as_json(),
        "body": req.body,
        "status": response.status,
        "response": JSONText(response.text()) if response.body is not None else None,
        "operation": route.operation if route else "",
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "at": req.now,
    }
    write_call(world, call, req.changes, held, reads, wait)


def _as_response(result):
    if isinstance(result, SimResponse):
        return result
    if result is None:
        return SimResponse(204, None)
    return SimResponse(200, result)
