"""Model output (untrusted text) to one action, or a format error the model can act on.

The first JSON object in the text is the action; prose before it and anything after it are
ignored, and Markdown code fences around it are fine. It must be either
`{"method": ..., "path": ..., "body": ...}` (an HTTP call; body optional) or `{"final": ...}`.
A native tool-call wrapper `{"name": ..., "arguments": {...}}` is unwrapped to its arguments.
Every other output yields a `ParsedAction` with `error` set to a message meant for the model:
the environment shows it as the observation and the reward counts it as a format error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
EXAMPLE = '{"method": "GET", "path": "/rest/api/3/issue/KEY-1"} or {"final": "your answer"}'


@dataclass(frozen=True)
class ParsedAction:
    """Either an action (`method`/`path`/`body`, or `final`) or a format `error`."""

    method: str | None = None
    path: str | None = None
    body: Any = None
    final: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_final(self) -> bool:
        return self.error is None and self.final is not None

    def as_dict(self) -> dict:
        """The action as stored and shown: `{"method","path","body"}`, `{"final"}` or `{"error"}`."""
        if self.error is not None:
            return {"error": self.error}
        if self.final is not None:
            return {"final": self.final}
        return {"method": self.method, "path": self.path, "body": self.body}


def _error(message: str) -> ParsedAction:
    return ParsedAction(error=f"{message} Reply with exactly one JSON object, e.g. {EXAMPLE}.")


def first_json_object(text: str) -> tuple[dict | None, str | None]:
    """The first `{...}` in `text` that decodes as a JSON object, or (None, why not)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    first_failure = None
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as error:
            first_failure = first_failure or error
        else:
            if isinstance(value, dict):
                return value, None
        start = text.find("{", start + 1)
    if first_failure is None:
        return None, "No JSON object found in your reply."
    if re.search(r"\{\s*'", text):
        return None, "Invalid JSON: use double quotes for keys and strings, not single quotes."
    return None, f"Invalid JSON ({first_failure.msg} at character {first_failure.pos})."


def parse_action(text: str) -> ParsedAction:
    """Parse one model turn into a `ParsedAction` (never raises on bad input)."""
    obj, why = first_json_object(text)
    if obj is None:
        return _error(why or "No JSON object found in your reply.")
    if isinstance(obj.get("arguments"), dict) and "name" in obj:
        obj = obj["arguments"]
    if "final" in obj:
        if "method" in obj or "path" in obj:
            return _error('An action has either "final" or "method" and "path", not both.')
        final = obj["final"]
        return ParsedAction(final=final if isinstance(final, str) else json.dumps(final, ensure_ascii=False))
    method, path = obj.get("method"), obj.get("path")
    if method is None or path is None:
        return _error('The JSON object needs "method" and "path" (or "final").')
    if not isinstance(method, str) or method.upper() not in METHODS:
        return _error(f'"method" must be one of {", ".join(METHODS)}.')
    if not isinstance(path, str) or not path.startswith("/"):
        return _error('"path" must be a string starting with "/", e.g. "/rest/api/3/issue/KEY-1".')
    body = obj.get("body")
    if body is not None and not isinstance(body, dict | list):
        return _error('"body" must be a JSON object or array when present.')
    return ParsedAction(method=method.upper(), path=path, body=body)
