"""The tiny template language of task suites: ``{{ name }}``, ``{{ name.field }}``,
``{{ name.0 }}`` and filters ``{{ name | lower }}``. Nothing else: no code, no loops, no blocks,
so a suite from anyone is safe to render.

A string that is exactly one ``{{ ... }}`` renders to the value itself (a number stays a number,
a list a list); anywhere else values are written into the text.
"""

import json
import re

_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
_EXPR = re.compile(r"^\s*([A-Za-z_]\w*)((?:\.\w+)*)\s*((?:\|\s*\w+\s*)*)$")
FILTERS = {
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "title": lambda v: str(v).title(),
    "strip": lambda v: str(v).strip(),
    "json": lambda v: json.dumps(v, sort_keys=True),
    "length": len,
}


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``offset`` is where in the text."""

    def __init__(self, message, offset=0):
        super().__init__(message)
        self.offset = offset


class Ref:
    """One ``{{ ... }}``: a root name, a path of fields below it and filters."""

    def __init__(self, name, path, filters, source):
        self.name, self.path, self.filters, self.source = name, path, filters, source


def parse(text):
    """The text as a list of literal strings and Refs; raises TemplateError."""
    parts, pos = [], 0
    for m in _TAG.finditer(text):
        literal = text[pos : m.start()]
        _check_literal(literal, pos)
        if literal:
            parts.append(literal)
        expr = _EXPR.match(m.group(1))
        if not expr:
            raise TemplateError(
                f"'{m.group(0)}' is not a variable reference like '{{{{ name.field }}}}'", m.start()
            )
        filters = [f.strip() for f in expr.group(3).split("|") if f.strip()]
        for name in filters:
            if name not in FILTERS:
                known = ", ".join(sorted(FILTERS))
                raise TemplateError(f"unknown filter '{name}' in '{m.group(0)}' (known: {known})", m.start())
        path = [p for p in expr.group(2).split(".") if p]
        parts.append(Ref(expr.group(1), path, filters, m.group(0)))
        pos = m.end()
    _check_literal(text[pos:], pos)
    if text[pos:]:
        parts.append(text[pos:])
    return parts


def _check_literal(literal, offset):
    if "{%" in literal:
        raise TemplateError(
            "'{%' blocks are not supported; only '{{ name }}' references", offset + literal.index("{%")
        )
    if "{{" in literal:
        raise TemplateError("'{{' is never closed with '}}'", offset + literal.index("{{"))


def names(text):
    """The root names a template string refers to."""
    return {p.name for p in parse(text) if isinstance(p, Ref)}


def names_in(value):
    """The root names referred to anywhere in a nested value (strings in dicts and lists)."""
    found = set()
    if isinstance(value, str):
        found |= names(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            found |= names_in(k) | names_in(v)
    elif isinstance(value, list):
        for v in value:
            found |= names_in(v)
    return found


def _lookup(ref, context):
    value = context[ref.name]
    for i, step in enumerate(ref.path):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            where = ".".join([ref.name, *ref.path[:i]])
            raise TemplateError(f"'{where}' has no '{step}' (in '{ref.source}')")
    for name in ref.filters:
        value = FILTERS[name](value)
    return value


def render(text, context, *, late=()):
    """Render one string. References to a name in ``late`` (known only once setup has run) that
    the context does not have yet are left as they are, to be rendered again later."""
    parts = parse(text)
    if len(parts) == 1 and isinstance(parts[0], Ref):
        ref = parts[0]
        if ref.name not in context and ref.name in late:
            return text
        if ref.name not in context:
            raise TemplateError(f"'{ref.name}' is not defined (in '{ref.source}')")
        return _lookup(ref, context)
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part.name not in context and part.name in late:
            out.append(part.source)
        elif part.name not in context:
            raise TemplateError(f"'{part.name}' is not defined (in '{part.source}')")
        else:
            value = _lookup(part, context)
            out.append(
                value
                if isinstance(value, str)
                else json.dumps(value)
                if isinstance(value, dict | list)
                else str(value)
            )
    return "".join(out)


def render_value(value, context, *, late=()):
    """Render every string in a nested value (keys included)."""
    if isinstance(value, str):
        return render(value, context, late=late)
    if isinstance(value, dict):
        return {
            render(str(k), context, late=late): render_value(v, context, late=late) for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(v, context, late=late) for v in value]
    return value
