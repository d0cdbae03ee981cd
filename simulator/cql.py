"""CQL, the Confluence Query Language, in the small subset scripts and agents use for pages:
``compile_cql(world, text)`` gives the ``Q`` over the world's pages and the ordering.

    query   := or_expr [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or_expr := and_expr {OR and_expr};  and_expr := not_expr {AND not_expr}
    not_expr:= NOT not_expr | "(" or_expr ")" | field (= | != | ~ | !~) value
             | field [NOT] IN "(" value {, value} ")"

Fields: ``type`` (page; blog posts and attachments are not simulated, so they match nothing),
``space`` (key), ``title`` (``=`` exact, ``~`` words), ``text`` (``~`` words of the title and
the body), ``label``, ``id``, ``parent`` (a page id: its direct children), ``ancestor`` (a page
id: everything below it). Keywords and field names are case-insensitive. ``~`` matches pages
whose text contains every word of the value, case-insensitively. A query that does not parse,
or names another field, raises ``CqlError`` with the message Confluence gives (400).
"""

import re

from django.db.models import Exists, OuterRef, Q
from lark import Lark
from lark.exceptions import UnexpectedInput

from simulator.models import Page, PageLabel

GRAMMAR = r"""
start: or_expr [order_by]
?or_expr: and_expr | or_expr _OR and_expr      -> or_
?and_expr: not_expr | and_expr _AND not_expr   -> and_
?not_expr: atom | _NOT not_expr                -> not_
?atom: "(" or_expr ")" | clause
clause: FIELD OP value                          -> compare
      | FIELD _IN list                          -> in_
      | FIELD _NOT _IN list                     -> not_in
OP: "!=" | "!~" | "=" | "~"
list: "(" value ("," value)* ")"
value: FIELD | STRING
order_by: _ORDER _BY sort_key ("," sort_key)*
sort_key: FIELD [DIRECTION]
DIRECTION: "asc"i | "desc"i
_AND: "and"i
_OR: "or"i
_NOT: "not"i
_IN: "in"i
_ORDER: "order"i
_BY: "by"i
FIELD: /[A-Za-z0-9_.\-:*]+/
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=True)
_NOTHING = Q(pk__in=[])
_SORTS = {"title": "title", "created": "created", "lastmodified": "version_created", "id": "ext_id"}


class CqlError(ValueError):
    """A query Confluence would refuse with 400; ``str(error)`` is the message."""


def compile_cql(world, text):
    """(Q over the world's pages, ordering) for a CQL query; raises CqlError."""
    try:
        tree = _PARSER.parse(text or "")
    except UnexpectedInput:
        raise CqlError(f"Could not parse cql : {text}") from None
    where, order = tree.children
    q = _Compiler(world).compile(where)
    ordering = []
    if order is not None:
        for key in order.children:
            name, direction = key.children
            column = _SORTS.get(str(name).lower())
            if column is None:
                raise CqlError(f"Cannot order by field : {name}")
            ordering.append(f"-{column}" if direction and direction.lower() == "desc" else column)
    return q, (*ordering, "ext_id")


def _unquote(token):
    text = str(token)
    if token.type == "STRING":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


class _Compiler:
    def __init__(self, world):
        self.world = world

    def compile(self, node):
        if node.data in ("or_", "and_"):
            left, right = (self.compile(child) for child in node.children)
            return (left | right) if node.data == "or_" else (left & right)
        if node.data == "not_":
            return ~self.compile(node.children[0])
        field = str(node.children[0]).lower()
        if node.data == "compare":
            op, values = str(node.children[1]), [_unquote(node.children[2].children[0])]
        else:
            op = "=" if node.data == "in_" else "!="
            values = [_unquote(v.children[0]) for v in node.children[1].children]
        compile_field = getattr(self, f"field_{field}", None)
        if compile_field is None:
            raise CqlError(f"Could not parse cql : unsupported field '{node.children[0]}'")
        negative = op.startswith("!")
        if op in ("~", "!~") and field not in ("title", "text"):
            raise CqlError(f"The operator '{op}' is not supported by the field '{field}'.")
        q = compile_field(values, contains=op.endswith("~"))
        return ~q if negative else q

    # One method per field: values -> Q of the pages with any of them.

    def field_type(self, values, contains):
        return Q() if any(v.lower() == "page" for v in values) else _NOTHING

    def field_space(self, values, contains):
        return Q(space__key__in=[v.upper() for v in values])

    def field_id(self, values, contains):
        return Q(ext_id__in=_ids(values))

    def field_title(self, values, contains):
        if not contains:
            return _any(Q(title__iexact=v) for v in values)
        return _any(_words(("title",), v) for v in values)

    def field_text(self, values, contains):
        if not contains:
            raise CqlError("The operator '=' is not supported by the field 'text'; use '~'.")
        return _any(_words(("title", "body"), v) for v in values)

    def field_label(self, values, contains):
        names = [v.lower() for v in values]
        return Exists(PageLabel.objects.filter(page=OuterRef("pk"), name__in=names))

    def field_parent(self, values, contains):
        return Q(parent__ext_id__in=_ids(values))

    def field_ancestor(self, values, contains):
        pages = Page.objects.filter(world=self.world)
        parents = dict(pages.values_list("pk", "parent_id"))
        tops = set(pages.filter(ext_id__in=_ids(values)).values_list("pk", flat=True))
        below = set()
        for pk in parents:
            seen, parent = {pk}, parents[pk]
            while parent is not None and parent not in seen:
                if parent in tops:
                    below.add(pk)
                    break
                seen.add(parent)
                parent = parents.get(parent)
        return Q(pk__in=below)


def _ids(values):
    bad = [v for v in values if not v.isdecimal()]
    if bad:
        raise CqlError(f"The content id '{bad[0]}' is not a number.")
    return [int(v) for v in values]


def _words(columns, text):
    """Pages whose ``columns`` together contain every word of ``text`` (case-insensitive)."""
    q = Q()
    for word in re.findall(r"\w+", text):
        q &= _any(Q(**{f"{column}__icontains": word}) for column in columns)
    return q


def _any(qs):
    result = _NOTHING
    for q in qs:
        result |= q
    return result
