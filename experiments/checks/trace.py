"""Trace checks: on the list of calls the agent made and on what they changed.

Call patterns: ``"POST /rest/api/3/issue/{key}/transitions"`` or a mapping of ``method``
(one or a list; ``*`` any), ``path``, ``query`` and ``body`` (subsets the call must hold) and
``status`` (``2xx`` (the default for calls that must happen), ``4xx``, ``error``, ``any`` or a
number). In paths ``/rest/api/2``, ``/3`` and ``/latest`` are alike, ``{name}`` is any one
segment, ``*`` any run of characters within a segment, ``**`` any number of segments (none
too: ``/issue/OPS-1/**`` is the issue and everything under it), and an issue key also matches
that issue's id.
"""

import fnmatch
import re
from dataclasses import dataclass

from experiments.checks import Outcome, Param, check
from experiments.checks.compare import subset_matches
from simulator import selectors

METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "*"}
STATUSES = ("2xx", "4xx", "error", "any")
_PLACEHOLDER = re.compile(r"\{\w*\}")
_PATTERN_KEYS = {"method", "path", "query", "body", "status"}


@dataclass
class CallPattern:
    methods: set
    path: str
    query: dict | None
    body: object
    status: object
    regex: re.Pattern | None = None

    def __str__(self):
        return f"{'|'.join(sorted(self.methods)) or '*'} {self.path}"

    def matches(self, call):
        if self.methods and "*" not in self.methods and call["method"].upper() not in self.methods:
            return False
        if not _status_ok(self.status, call["status"]):
            return False
        if not self.regex.match(call["path"]):
            return False
        if self.query is not None and not subset_matches(self.query, call["query"]):
            return False
        return self.body is None or subset_matches(self.body, call["body"])


def pattern_problem(spec):
    """Why ``spec`` is not a call pattern (a sentence), or None when it is one."""
    if isinstance(spec, str):
        parts = spec.split(None, 1)
        if len(parts) != 2 or parts[0].upper() not in METHODS or not parts[1].startswith("/"):
            return f"'{spec}' is not a call pattern like 'POST /rest/api/3/issue'"
        return None
    if not isinstance(spec, dict):
        return "a call pattern is a string like 'GET /rest/api/3/myself' or a mapping"
    unknown = set(spec) - _PATTERN_KEYS
    if unknown:
        known = ", ".join(sorted(_PATTERN_KEYS))
        return f"unknown key '{sorted(unknown)[0]}' in a call pattern (known: {known})"
    if not isinstance(spec.get("path"), str) or not spec["path"].startswith("/"):
        return "a call pattern needs a 'path' starting with '/'"
    methods = spec.get("method", "*")
    for m in methods if isinstance(methods, list) else [methods]:
        if str(m).upper() not in METHODS:
            return f"'{m}' is not an HTTP method"
    status = spec.get("status")
    if status is not None and status not in STATUSES and not isinstance(status, int):
        return f"status '{status}' should be one of {', '.join(STATUSES)} or a number"
    return None


def parse_pattern(spec, *, status="2xx"):
    if isinstance(spec, str):
        method, path = spec.split(None, 1)
        spec = {"method": method, "path": path.strip()}
    methods = spec.get("method", "*")
    methods = {str(m).upper() for m in (methods if isinstance(methods, list) else [methods])}
    path = spec["path"]
    query = spec.get("query")
    if "?" in path:  # a query written into the path adds to the query subset
        path, _, qs = path.partition("?")
        from urllib.parse import parse_qsl

        query = {**dict(parse_qsl(qs, keep_blank_values=True)), **(query or {})}
    return CallPattern(methods, path, query, spec.get("body"), spec.get("status", status))


def _status_ok(rule, status):
    if rule == "any":
        return True
    if rule == "2xx":
        return 200 <= status < 300
    if rule == "4xx":
        return 400 <= status < 500
    if rule == "error":
        return status >= 400
    return status == int(rule)


ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


def _segment(seg, aliases):
    if ISSUE_KEY.match(seg):
        alias = aliases.get(seg.upper())
        return f"(?i:{re.escape(seg)}{'|' + alias if alias else ''})"
    out, pos = [], 0
    for m in re.finditer(r"\{\w*\}|\*", seg):
        out.append(re.escape(seg[pos : m.start()]))
        out.append("[^/]+" if m.group(0) != "*" else "[^/]*")
        pos = m.end()
    out.append(re.escape(seg[pos:]))
    return "".join(out)


def compile_patterns(facts, patterns):
    """Give each pattern its regex; issue keys in paths also match the issue's id."""
    keys = {seg for p in patterns for seg in p.path.split("/") if ISSUE_KEY.match(seg)}
    aliases = selectors.issue_ids(facts.world, keys) if keys else {}
    for p in patterns:
        segs = p.path.strip("/").split("/")
        parts = []
        for i, seg in enumerate(segs):
            if seg == "**":
                parts.append("(?:/.*)?")  # none, one or several segments
            elif i == 2 and segs[:2] == ["rest", "api"]:
                parts.append("/(?:2|3|latest)")  # REST versions are alike
            else:
                parts.append("/" + _segment(seg, aliases))
        p.regex = re.compile("^" + "".join(parts) + "/?$")
    return patterns


PATTERN = {
    "call": Param("call", help="'METHOD /path', instead of method + path"),
    "method": Param("strings"),
    "path": Param("str"),
    "query": Param("dict", help="query parameters the call must have"),
    "body": Param("any", help="a subset the call's JSON body must hold"),
    "status": Param("scalar", help="2xx, 4xx, error, any or a number"),
}


def _pattern_from(params, status):
    """The pattern of a check: ``call`` ('METHOD /path' or a mapping) and/or the pattern keys."""
    spec = {k: params[k] for k in _PATTERN_KEYS if k in params}
    call = params.get("call")
    if isinstance(call, str):
        method, path = call.split(None, 1)
        spec = {"method": method, "path": path.strip(), **spec}
    elif isinstance(call, dict):
        spec = {**call, **spec}
    return parse_pattern(spec, status=status)


@check(
    "called",
    "trace",
    params={
        **PATTERN,
        "min": Param("int", help="at least this many times (1)"),
        "max": Param("int", help="at most this many times"),
    },
    shorthand="call",
    one_of=("call", "path"),
)
def called(facts, params):
    """A call matching the pattern was made (successfully, unless ``status`` says otherwise), at
    least ``min`` and at most ``max`` times."""
    (pattern,) = compile_patterns(facts, [_pattern_from(params, "2xx")])
    n = sum(pattern.matches(c) for c in facts.calls)
    lo, hi = params.get("min", 1), params.get("max")
    if hi is not None and n > hi:
        return Outcome(0, f"expected {pattern} at most {hi} time(s), it was made {n} times")
    if n >= lo:
        return Outcome(1, f"{pattern} was made {n} time(s), as expected")
    return Outcome(n / lo if lo else 0, f"expected {pattern} at least {lo} time(s), it was made {n} time(s)")


@check("not_called", "trace", params=PATTERN, shorthand="call", one_of=("call", "path"))
def not_called(facts, params):
    """No call matching the pattern was made (with any status, unless ``status`` says)."""
    (pattern,) = compile_patterns(facts, [_pattern_from(params, "any")])
    hits = [c for c in facts.calls if pattern.matches(c)]
    if not hits:
        return Outcome(1, f"{pattern} was never called, as expected")
    return Outcome(
        0,
        f"{pattern} should not be called; call #{hits[0]['seq']} {hits[0]['method']} "
        f"{hits[0]['path']} was ({len(hits)} in all)",
    )


@check("order", "trace", params={"calls": Param("calls", required=True)}, shorthand="calls")
def order(facts, params):
    """The calls happen in this order (other calls may come between); each pattern reached in
    order earns its share."""
    patterns = compile_patterns(facts, [parse_pattern(s) for s in params["calls"]])
    done = 0
    for call in facts.calls:
        if done < len(patterns) and patterns[done].matches(call):
            done += 1
    if done == len(patterns):
        return Outcome(1, f"the {len(patterns)} calls came in order")
    return Outcome(
        done / len(patterns),
        f"{done} of {len(patterns)} calls came in order; missing from there: {patterns[done]}",
    )


@check("max_calls", "trace", params={"max": Param("int", required=True)}, required=False, shorthand="max")
def max_calls(facts, params):
    """At most ``max`` calls in all; beyond it the score is max / calls made."""
    n, limit = len(facts.calls), params["max"]
    if n <= limit:
        return Outcome(1, f"{n} call(s), within the budget of {limit}")
    return Outcome(limit / n, f"{n} calls, over the budget of {limit}")


ERROR_COST = 0.25


@check(
    "no_errors",
    "trace",
    params={"allow": Param("int", help="errors tolerated (0)")},
    required=False,
    shorthand="allow",
)
def no_errors(facts, params):
    """No call answered 4xx/5xx beyond ``allow`` of them; each one over costs 0.25."""
    errors = [c for c in facts.calls if c["status"] >= 400]
    allow = params.get("allow", 0)
    if len(errors) <= allow:
        return Outcome(1, f"{len(errors)} failed call(s), within the {allow} allowed")
    shown = ", ".join(f"#{c['seq']} {c['method']} {c['path']} → {c['status']}" for c in errors[:3])
    return Outcome(
        1 - ERROR_COST * (len(errors) - allow), f"{len(errors)} failed calls, {allow} allowed: {shown}"
    )


def allow_problem(entry):
    """Why ``entry`` is not an allowed-write entry, or None."""
    if isinstance(entry, str):
        return None if entry.count(":") in (1, 2) else f"'{entry}' should read 'type:ref' or 'type:ref:field'"
    if isinstance(entry, dict):
        unknown = set(entry) - {"type", "ref", "fields"}
        if unknown:
            return f"unknown key '{sorted(unknown)[0]}' (known: type, ref, fields)"
        return None if "type" in entry else "an allowed write needs a 'type'"
    return "an allowed write is 'type:ref' or a mapping of type, ref, fields"


def _allow_entry(entry):
    if isinstance(entry, str):
        kind, ref, *field = entry.split(":")
        return kind, ref or "*", field
    fields = entry.get("fields") or []
    return entry["type"], str(entry.get("ref", "*")), fields if isinstance(fields, list) else [fields]


@check(
    "no_collateral",
    "trace",
    params={"allow": Param("allow", help="the writes the task may make")},
    shorthand="allow",
)
def no_collateral(facts, params):
    """Every write (from the change log) touches only allowed objects: ``type:ref`` with ``*``
    globs, ``type:new`` for objects the episode created, ``type:ref:field`` for one field."""
    entries = [_allow_entry(e) for e in params.get("allow") or []]
    refs = {ref.upper() for _, ref, _ in entries if ISSUE_KEY.match(ref)}
    ids = selectors.issue_ids(facts.world, refs) if refs else {}

    def allowed(change):
        for kind, ref, fields in entries:
            if kind not in ("*", change["object_type"]):
                continue
            if fields and (change["action"] != "update" or change["field"] not in fields):
                continue
            if ref == "new" and facts.is_new(change["object_type"], change["object_ref"]):
                return True
            names = {ref.upper(), ids.get(ref.upper(), ref.upper())}
            if any(fnmatch.fnmatchcase(change["object_ref"].upper(), n) for n in names):
                return True
        return False

    bad = [c for c in facts.changes if not allowed(c)]
    if not bad:
        return Outcome(1, f"{len(facts.changes)} change(s), all to objects the task allows")
    shown = "; ".join(
        f"{c['action']}d {c['object_type']} {c['object_ref']}" + (f" {c['field']}" if c["field"] else "")
        for c in bad[:4]
    )
    return Outcome(0, f"{len(bad)} change(s) outside what the task allows: {shown}")
