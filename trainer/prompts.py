"""What the policy reads: a compact system prompt with endpoint docs, the instruction, then turns.

A conversation is: system (rules + the endpoints the suite uses), user (the instruction), then per
turn an assistant message (the JSON action the model wrote) and a user message (the observation:
status code and the JSON body, links left out, cut to a token budget). It goes through the
tokenizer's own chat template, so any chat model reads it in its native format.

The system prompt is the same for every task of a suite and is encoded for every sample, turn and
update, so it is kept terse: one line per endpoint, bodies as skeletons.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

PREAMBLE = (
    "You operate Jira Cloud REST v3 and Confluence Cloud v2 over HTTP. Each turn, reply with exactly one "
    "JSON object and nothing else: "
    '{"method": "GET", "path": "/rest/api/3/...", "body": {...}} makes a call (leave out body when there is '
    'none); {"final": "..."} ends the task with your answer (say so if what was asked for does not exist). '
    "Each call's result comes back as its status code and JSON body."
)


@dataclass
class Observation:
    """What the environment shows after an action.

    `status` is the HTTP status code of the call, or None when no call was made (e.g. a format
    error); `body` is the JSON body, or a message string.
    """

    status: int | None
    body: Any = None


def _resolve(schema: Any, document: dict, depth: int = 0) -> Any:
    if isinstance(schema, dict) and "$ref" in schema and depth < 8:
        target: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _resolve(target, document, depth + 1)
    return schema


def schema_skeleton(schema: Any, document: dict | None = None, depth: int = 0) -> Any:
    """A JSON skeleton of an OpenAPI schema: objects keep their keys, leaves become type names.

    `{"type": "object", "properties": {"key": {"type": "string"}}}` becomes `{"key": "string"}`;
    required keys of an object come first, and nesting stops after four levels.
    """
    schema = _resolve(schema, document or {})
    if not isinstance(schema, dict):
        return "any"
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return "|".join(str(value) for value in schema["enum"])
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    for combined in ("oneOf", "anyOf", "allOf"):
        if not kind and schema.get(combined):
            return schema_skeleton(schema[combined][0], document, depth)
    if kind == "object":
        properties = schema.get("properties") or {}
        if depth >= 4 or not properties:
            return "object"
        required = [name for name in schema.get("required", []) if name in properties]
        order = required + [name for name in properties if name not in required]
        return {name: schema_skeleton(properties[name], document, depth + 1) for name in order}
    if kind == "array":
        return [schema_skeleton(schema.get("items", {}), document, depth + 1)]
    return kind or "any"


def _request_example(operation: dict, document: dict) -> Any:
    body = _resolve(operation.get("requestBody"), document)
    if not isinstance(body, dict):
        return None
    content = body.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    if not isinstance(media, dict):
        return None
    if "example" in media:
        return media["example"]
    if "schema" in media:
        return schema_skeleton(media["schema"], document)
    return None


def endpoint_docs(openapi: dict, only: Iterable[tuple[str, str]] | None = None) -> str:
    """One line per operation of an OpenAPI-3-like document, in document order.

    `openapi` is `{"paths": {path: {method: {"summary", "parameters", "requestBody"}}}}` (the
    simulator serves one). `only`, when given, keeps the listed `(METHOD, path)` pairs: the
    endpoints a suite uses. A line reads `POST /rest/api/3/issue - Create issue; body {...}`, with
    query parameters after the path as `?name&name`.
    """
    wanted = {(method.upper(), path) for method, path in only} if only is not None else None
    lines = []
    for path, operations in (openapi.get("paths") or {}).items():
        for method, operation in operations.items():
            if method.lower() not in HTTP_METHODS or not isinstance(operation, dict):
                continue
            if wanted is not None and (method.upper(), path) not in wanted:
                continue
            query = [
                parameter.get("name", "")
                for parameter in map(lambda p: _resolve(p, openapi), operation.get("parameters", []))
                if isinstance(parameter, dict) and parameter.get("in") == "query"
            ]
            line = f"{method.upper()} {path}" + ("?" + "&".join(query) if query else "")
            summary = operation.get("summary") or operation.get("operationId")
            if summary:
                line += f" - {summary}"
            example = _request_example(operation, openapi)
            if example is not None:
                line += "; body " + compact_json(example)
            lines.append(line)
    return "\n".join(lines)


def system_prompt(docs: str, preamble: str = PREAMBLE) -> str:
    """The system message: the action rules, then the endpoint lines from `endpoint_docs`."""
    return f"{preamble}\nEndpoints:\n{docs}" if docs else preamble


def compact_json(value: Any) -> str:
    """JSON without spaces after separators (fewer tokens), non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# How many tokens of an observation's body the model is shown (`render_observation`).
OBSERVATION_TOKENS = 384

# Keys of an Atlassian response that only point elsewhere or decorate: the object's own URL
# (`self`, which carries the world's slug, so it differs between episodes), avatar and icon URLs,
# and the hints of what else could be expanded. An agent acts on none of them, and they were most
# of a response's tokens: cut to a budget, an issue's assignee lost its name behind four avatar
# URLs, a transition list its third transition, a page its body. `_links` keeps its `next` (the
# cursor of the next page of results); everything else is shown as the API returned it.
LINK_KEYS = frozenset({"self", "avatarUrls", "iconUrl", "expand", "_expandable", "_links"})


def agent_view(body: Any) -> Any:
    """`body` without the `LINK_KEYS` at any depth (`_links` reduced to its `next`, if any)."""
    if isinstance(body, list):
        return [agent_view(item) for item in body]
    if not isinstance(body, dict):
        return body
    view = {key: agent_view(value) for key, value in body.items() if key not in LINK_KEYS}
    links = body.get("_links")
    if isinstance(links, dict) and links.get("next"):
        view["_links"] = {"next": links["next"]}
    return view


def render_observation(observation: Observation, tokenizer, max_tokens: int = OBSERVATION_TOKENS) -> str:
    """The user message for an observation: `Status 200` then the compact JSON of the body's
    `agent_view`.

    A body longer than `max_tokens` tokens is cut to that many and marked
    `...[truncated, N more tokens]` so the model knows it did not see everything.
    """
    head = "Error" if observation.status is None else f"Status {observation.status}"
    body = observation.body
    if body is None or body == "":
        return head
    text = body if isinstance(body, str) else compact_json(agent_view(body))
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) > max_tokens:
        text = tokenizer.decode(ids[:max_tokens]) + f"...[truncated, {len(ids) - max_tokens} more tokens]"
    return f"{head}\n{text}"


def build_messages(system: str, instruction: str, turns: Sequence[tuple[str, str]] = ()) -> list[dict]:
    """Chat messages: system, the instruction, then (action, observation) pairs as
    assistant/user turns. `turns` holds already-rendered texts."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": instruction}]
    for action_text, observation_text in turns:
        messages.append({"role": "assistant", "content": action_text})
        messages.append({"role": "user", "content": observation_text})
    return messages


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of `messages` through the chat template, ending with the assistant header.

    Returns a list of `T` ints; generation continues right after it.
    """
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return list(ids)
