"""JQL: a lark grammar and a compiler from a query to Django ORM filters over a world's issues.

``compile_jql(world, text, user=...)`` parses the query, looks up the values it names (projects,
statuses, users, sprints, ...: one query per table it needs) and returns a ``JqlQuery`` whose
``apply(issues)`` adds one ``WHERE`` (``Q`` objects and ``Exists`` subqueries) and one ``ORDER BY``
to a queryset. Nothing is evaluated in Python over the issues.

The grammar (keywords, operators and field names case-insensitive)::

    query    := [or_expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or_expr  := and_expr {(OR | "||") and_expr}         AND binds tighter than OR
    and_expr := not_expr {(AND | "&&") not_expr}
    not_expr := (NOT | "!") not_expr | "(" or_expr ")" | clause
    clause   := field (= | != | ~ | !~ | < | > | <= | >=) operand
              | field [NOT] IN (list | function)
              | field IS [NOT] (EMPTY | NULL)
    field    := word | "quoted name" | cf[10016]
    operand  := value | function | EMPTY | NULL          list := "(" item {, item} ")"
    value    := bare-word | "double quoted" | 'single quoted' (backslash escapes)
    function := word "(" [arg {, arg}] ")"

Fields (aliases in brackets): project, key [issuekey, id, issue], issuetype [type], status,
statusCategory, priority, assignee, reporter, creator, watcher, labels, summary, description,
comment, text, resolution, created [createdDate], updated [updatedDate], duedate [due], resolved
[resolutiondate], sprint [cf[10020]], parent, component, fixVersion, "Story Points" ["Story point
estimate", cf[10016]]; ``rank`` only in ORDER BY (creation order stands in for it). Functions:
currentUser(), membersOf(group), now(), startOf/endOf Day/Week/Month/Year([±N unit]),
openSprints(), closedSprints(), futureSprints(), releasedVersions([project]),
unreleasedVersions([project]), linkedIssues(key[, "blocks"]), watchedIssues().

Semantics follow Jira Cloud where it is documented or commonly observed:

- ``!=``, ``!~`` and ``NOT IN`` never match an issue whose field is empty (``assignee != bob``
  leaves out unassigned issues), and ``NOT`` is pushed down to the clauses (De Morgan), so
  ``NOT assignee = bob`` means ``assignee != bob`` as in Jira.
- Values of fields with a fixed value set (project, status, user, sprint, ...) must exist:
  "The value 'x' does not exist for the field 'f'."; keys must name an existing issue.
- Dates are read in the searching user's time zone and relative dates and date functions
  count from the world's clock (``world.now()``), never the host's. A date-only field
  (``duedate``) is compared as midnight of its day; ``=`` compares whole days.
- ``~`` is a word search, case-insensitive, all terms must match: a term matches a word that
  starts with its crude stem followed by a common English ending (``fail`` matches "fails",
  "failed", "failing"), ``win*`` is a prefix, ``"\\"two words\\""`` a phrase; English stop words
  are dropped. Descriptions and comment bodies are ADF JSON: the search runs over the column
  as text, limited by the regular expression to the values of ``"text"`` keys (the ADF text
  nodes), on SQLite and PostgreSQL alike.
- ``priority > Medium`` means more urgent (a lower ``Priority.rank``); ``key > OPS-10`` means a
  higher number in project OPS. ``ORDER BY priority DESC`` lists the most urgent first, after
  the issues without one: empty values sort as the greatest, as in Jira. Every ordering ends
  with ``ext_id``, so results are deterministic.
"""

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IRegex
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from simulator.models import (
    STATUS_CATEGORIES,
    Comment,
    Component,
    Issue,
    IssueLabel,
    IssueLink,
    IssueType,
    Priority,
    Project,
    Resolution,
    Sprint,
    Status,
    User,
    Version,
    Watcher,
)
from simulator.world_config import cached_config

STORY_POINTS_CF = 10016  # customfield_10016, as the field catalogue shows it
SPRINT_CF = 10020


class JqlError(ValueError):
    """A query Jira would refuse with 400; ``str(error)`` is the whole message to show."""

    kind = "value"


class JqlSyntaxError(JqlError):
    """The query does not parse. ``line``/``column`` (1-based) point at the offending token."""

    kind = "syntax"

    def __init__(self, problem, line, column):
        super().__init__(f"Error in the JQL Query: {problem} (line {line}, character {column})")
        self.line, self.column = line, column


class JqlValueError(JqlError):
    """The query parses but names an unknown field, value, function, or misuses an operator."""


class JqlUnboundedError(JqlError):
    kind = "unbounded"


# --- Parsing --------------------------------------------------------------------------------------

GRAMMAR = r"""
start: [or_expr] [order_by]

?or_expr: and_expr
        | or_expr (_OR | _BARS) and_expr        -> or_
?and_expr: not_expr
         | and_expr (_AND | _AMPS) not_expr     -> and_
?not_expr: atom
         | (_NOT | _BANG) not_expr              -> not_
?atom: "(" or_expr ")"
     | clause

clause: field compare_op operand                 -> compare
      | field _IN in_operand                     -> in_
      | field _NOT _IN in_operand                -> not_in
      | field _IS empty                          -> is_
      | field _IS _NOT empty                     -> is_not

field: WORD | STRING | CF
!compare_op: "=" | "!=" | "~" | "!~" | "<" | ">" | "<=" | ">="
?operand: value | function | empty
?in_operand: list | function
list: "(" item ("," item)* ")"
?item: value | function | empty
value: WORD | STRING
empty: EMPTY | NULL
function: WORD "(" [arg ("," arg)*] ")"
?arg: WORD | STRING

order_by: _ORDER _BY sort_key ("," sort_key)*
sort_key: field [ASC | DESC]

_AND: "and"i
_OR: "or"i
_NOT: "not"i
_AMPS: "&&" | "&"
_BARS: "||" | "|"
_BANG: "!"
_IN: "in"i
_IS: "is"i
EMPTY: "empty"i
NULL: "null"i
_ORDER: "order"i
_BY: "by"i
ASC: "asc"i
DESC: "desc"i
CF.2: /cf\[\d+\]/i
WORD: /[^\s"'(),=!<>~&|\[\]{}%^$#;?]+/i
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)

# Bare words Jira reserves: as a value they must be quoted.
_RESERVED = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}

_OPERATOR_LIST = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # = != ~ !~ < > <= >= in "not in" is "is not"
    operands: tuple  # of Value | Function | Empty; one unless the operator is IN / NOT IN
    is_list: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or" | "not"
    parts: tuple


def _unquote(token):
    if token.type != "STRING":
        return str(token)
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: chr(int(m[1][1:], 16)) if len(m[1]) == 5 else {"n": "\n", "t": "\t"}.get(m[1], m[1]),
        token[1:-1],
    )


def _operand(node):
    if isinstance(node, Token):  # a function argument
        return _unquote(node)
    if node.data == "empty":
        return Empty()
    if node.data == "function":
        name, *args = node.children
        return Function(str(name), tuple(_unquote(a) for a in args if a is not None))
    if node.data == "list":
        return tuple(_operand(child) for child in node.children)
    (token,) = node.children
    if token.type == "WORD" and token.lower() in _RESERVED:
        raise JqlSyntaxError(
            f"Expecting either a value, list or function but got '{token}'. You must surround "
            f"'{token}' in quotation marks to use it as a value.",
            token.line,
            token.column,
        )
    return Value(_unquote(token), token.type == "STRING")


def _field_name(node):
    (token,) = node.children
    return _unquote(token)


def _tree_to_ast(node):
    if node.data in ("or_", "and_", "not_"):
        return BoolOp(node.data.rstrip("_"), tuple(_tree_to_ast(child) for child in node.children))
    field = _field_name(node.children[0])
    if node.data == "compare":
        op = str(node.children[1].children[0])
        operand = _operand(node.children[2])
        if isinstance(operand, Empty) and op in ("=", "!="):  # `= EMPTY` is `IS EMPTY`
            return Clause(field, "is" if op == "=" else "is not", (operand,))
        return Clause(field, op, (operand,))
    if node.data in ("in_", "not_in"):
        operand = _operand(node.children[1])
        items = operand if isinstance(operand, tuple) else (operand,)
        return Clause(field, "in" if node.data == "in_" else "not in", items, is_list=True)
    return Clause(field, "is" if node.data == "is_" else "is not", (Empty(),))


def _shown(token):
    return "the end of the query" if token.type == "$END" else f"'{token}'"


def _syntax_problem(error, text):
    """Jira-like wording for a lark parse error: what was expected, and what came instead."""
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream]
        if char in "\"'":
            rest = text[error.pos_in_stream + 1 :]
            return f"The quoted string '{rest}' has not been completed."
        return (
            f"The character '{char}' is a reserved JQL character. You must enclose it in a string "
            f"or use the escape '\\u{ord(char):04x}' instead."
        )
    token = error.token
    # What the parser would really accept here (the LALR table's lookaheads are merged).
    parser = getattr(error, "interactive_parser", None)
    expected = set(parser.accepts()) if parser is not None else set(error.expected)
    got = _shown(token)
    if "EQUAL" in expected:
        return f"Expecting operator but got {got}. The valid operators are {_OPERATOR_LIST}."
    if expected >= {"WORD", "STRING", "EMPTY"}:
        problem = f"Expecting either a value, list or function but got {got}."
        if token.type.lstrip("_").lower() in _RESERVED:
            problem += f" You must surround '{token}' in quotation marks to use it as a value."
        return problem
    expectations = [
        ({"WORD", "CF"}, "a field name"),
        ({"_IN"}, "'IN'"),
        ({"EMPTY", "NULL"}, "'EMPTY'"),
        ({"_BY"}, "'BY'"),
        ({"ASC", "DESC"}, "either 'ASC', 'DESC' or ','"),
        ({"COMMA", "RPAR"}, "either ',' or ')'"),
        ({"RPAR"}, "')'"),
        ({"_OR"}, "either 'OR' or 'AND'"),
        ({"COMMA"}, "',' or the end of the query"),
        ({"LPAR"}, "either a list or function"),
    ]
    for terminals, what in expectations:
        if expected >= terminals:
            return f"Expecting {what} but got {got}."
    return f"Unexpected {got}."


def _position(error, text):
    token = getattr(error, "token", None)
    if isinstance(error, UnexpectedEOF) or (token is not None and token.type == "$END"):
        lines = text.split("\n")
        return len(lines), len(lines[-1]) + 1
    return error.line, error.column


def parse_jql(text):
    """The query as (where: Clause | BoolOp | None, order: [(field, descending)])."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as error:
        if isinstance(error, UnexpectedEOF):
            error.token = Token("$END", "")
            error.expected = set(error.expected)
        line, column = _position(error, text)
        raise JqlSyntaxError(_syntax_problem(error, text), line, column) from None
    where_tree, order_tree = tree.children
    where = _tree_to_ast(where_tree) if where_tree is not None else None
    order = []
    if order_tree is not None:
        for key in order_tree.children:
            field, direction = key.children
            order.append((_field_name(field), direction is not None and direction.lower() == "desc"))
    return where, order


# --- Compiling ------------------------------------------------------------------------------------

NEGATED = {
    "=": "!=",
    "!=": "=",
    "~": "!~",
    "!~": "~",
    "in": "not in",
    "not in": "in",
    "is": "is not",
    "is not": "is",
    "<": ">=",
    ">=": "<",
    ">": "<=",
    "<=": ">",
}
EQUALITY = frozenset({"=", "!=", "in", "not in", "is", "is not"})
RANGE = frozenset({"<", ">", "<=", ">="})
TEXT = frozenset({"~", "!~", "is", "is not"})
DATE = frozenset({"=", "!=", "is", "is not"}) | RANGE

MATCH_NOTHING = Q(pk__in=[])


@dataclass
class JqlQuery:
    """A compiled query: ``apply`` filters a queryset to the world and the query, and orders it."""

    world: object
    text: str
    where: Q | None
    ordering: tuple
    bounded: bool

    def apply(self, issues: QuerySet[Issue]) -> QuerySet[Issue]:
        issues = issues.filter(world=self.world)
        if self.where is not None:
            issues = issues.filter(self.where)
        return issues.order_by(*self.ordering)


def compile_jql(world, jql_text, *, user, require_bounded=False):
    """Parse and compile ``jql_text`` for ``user`` in ``world``; raise ``JqlError`` subclasses."""
    where, order = parse_jql(jql_text or "")
    if require_bounded and where is None:
        raise JqlUnboundedError(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
        )
    compiler = _Compiler(world, user)
    q = compiler.compile(where) if where is not None else None
    ordering = tuple(term for name, descending in order for term in compiler.order_term(name, descending))
    return JqlQuery(world, jql_text, q, (*ordering, "ext_id"), bounded=where is not None)


class _Compiler:
    def __init__(self, world, user):
        self.world, self.user = world, user
        self.now = world.now()
        try:
            self.tz = zoneinfo.ZoneInfo(getattr(user, "time_zone", None) or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.tz = dt.UTC
        self._tables = {}

    def table(self, model):
        """Every row of a small configuration table of this world, loaded once per compile."""
        if model not in self._tables:
            # A world in use has its configuration in memory (simulator.world_config); sprints
            # change, and a world nobody called yet is read table by table, as needed.
            config = cached_config(self.world)
            rows = config.rows.get(model) if config is not None else None
            if rows is None:
                rows = list(model.objects.filter(world=self.world).order_by("pk"))
            self._tables[model] = rows
        return self._tables[model]

    def compile(self, node, negate=False):
        if isinstance(node, BoolOp):
            if node.op == "not":
                return self.compile(node.parts[0], not negate)
            parts = [self.compile(part, negate) for part in node.parts]
            q = parts[0]
            for part in parts[1:]:
                q = (q | part) if (node.op == "or") != negate else (q & part)
            return q
        field = FIELDS.get(node.field.lower())
        if field is None:
            raise JqlValueError(
                f"Field '{node.field}' does not exist or you do not have permission to view it."
            )
        if node.op not in field.operators:
            raise JqlValueError(
                f"The operator '{node.op.upper()}' is not supported by the '{node.field}' field."
            )
        op = NEGATED[node.op] if negate else node.op
        return field.compile(self, _Ctx(node.field, op, node.operands))

    def order_term(self, name, descending):
        field = FIELDS.get(name.lower())
        if field is None:
            raise JqlValueError(f"Field '{name}' does not exist or you do not have permission to view it.")
        if not field.order_by:
            raise JqlValueError(f"Field '{name}' does not support sorting.")
        # Empty values sort as the greatest; "-column" runs against its value (priority: a
        # higher rank number is a lower priority).
        nulls = {"nulls_first": True} if descending else {"nulls_last": True}
        for column in field.order_by:
            expr = F(column.lstrip("-"))
            yield expr.desc(**nulls) if descending != column.startswith("-") else expr.asc(**nulls)

    # -- values of fields with a fixed value set

    def ids_named(self, ctx, value, rows, *attrs):
        """pks of ``rows`` whose ``attrs`` equal the value (case-insensitive), else whose ext_id does."""
        text = value.text.strip().casefold()
        found = {row.pk for row in rows for attr in attrs if str(getattr(row, attr)).casefold() == text}
        if not found and text.isdecimal():
            found = {row.pk for row in rows if row.ext_id == int(text)}
        if not found:
            raise ctx.no_value(value.text)
        return found

    def issue_ids(self, ctx, values):
        """pks of the issues that keys or ids name; every one must exist."""
        keys = {v.text.strip().upper() for v in values}
        numbers = {int(k) for k in keys if k.isdecimal()}
        rows = Issue.objects.filter(world=self.world).filter(
            Q(key__in=keys - {str(n) for n in numbers}) | Q(ext_id__in=numbers)
        )
        found = {}
        for pk, key, ext_id in rows.values_list("pk", "key", "ext_id"):
            found[key] = found[str(ext_id)] = pk
        for key in sorted(keys):
            if key not in found:
                raise JqlValueError(f"An issue with key '{key}' does not exist for field '{ctx.typed}'.")
        return {found[k] for k in keys}

    def user_ids(self, ctx, value):
        users = self.table(User)
        return self.ids_named(ctx, value, users, "account_id", "email", "display_name")

    # -- dates

    def moment(self, ctx, operand):
        """The aware datetime a date value or date function stands for."""
        if isinstance(operand, Function):
            return self.date_function(ctx, operand)
        text = operand.text.strip()
        delta = _period(text)
        if delta is not None:
            return self.now + delta
        for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
            try:
                return dt.datetime.strptime(text, fmt).replace(tzinfo=self.tz)
            except ValueError:
                continue
        raise JqlValueError(
            f"Date value '{text}' for field '{ctx.typed}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
            "e.g. '-5d', '4w 2d'."
        )

    def date_function(self, ctx, function):
        name = function.name.lower()
        if name == "now":
            _arity(function, 0, 0)
            return self.now
        if name not in DATE_FUNCTIONS:
            raise ctx.bad_function(function)
        _arity(function, 0, 1)
        unit_of_function, start = DATE_FUNCTIONS[name]
        local = self.now.astimezone(self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit_of_function == "d":
            begin, span = midnight, (0, 1)
        elif unit_of_function == "w":  # weeks start on Sunday, as Jira's default locale has it
            begin, span = midnight - dt.timedelta(days=(local.weekday() + 1) % 7), (0, 7)
        elif unit_of_function == "M":
            begin, span = midnight.replace(day=1), (1, 0)
        else:
            begin, span = midnight.replace(month=1, day=1), (12, 0)
        months, minutes = 0, 0
        if function.args:  # an increment such as -1, "+2w", 1M: months move the period itself
            match = re.fullmatch(r"\s*([-+]?\d+)\s*([yMwdhm]?)\s*", function.args[0])
            if not match:
                raise JqlValueError(
                    f"Function '{function.name}' was given the invalid increment '{function.args[0]}'; "
                    "use e.g. '-1d', '+2w' or '1M'."
                )
            amount, unit = int(match[1]), match[2] or unit_of_function
            months = {"y": 12 * amount, "M": amount}.get(unit, 0)
            minutes = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}.get(unit, 0) * amount
        begin = _shift(begin, months, 0)
        moment = begin if start else _shift(begin, *span) - dt.timedelta(microseconds=1)
        return moment + dt.timedelta(minutes=minutes)


@dataclass
class _Ctx:
    """One clause on its way through a field's compile function."""

    typed: str  # the field name as the query spelt it, for messages
    op: str  # the effective operator (after pushing NOT down)
    operands: tuple

    @property
    def positive(self):
        return self.op in ("=", "in", "is", "~")

    def no_value(self, text):
        return JqlValueError(f"The value '{text}' does not exist for the field '{self.typed}'.")

    def bad_function(self, function):
        if function.name.lower() in ALL_FUNCTIONS:
            return JqlValueError(
                f"The function '{function.name}' is not supported by the '{self.typed}' field."
            )
        return JqlValueError(f"Unable to find JQL function '{function.name}()'.")

    def single(self):
        (operand,) = self.operands
        return operand


def _arity(function, least, most):
    if not least <= len(function.args) <= most:
        expected = f"'{least}'" if least == most else f"between '{least}' and '{most}'"
        raise JqlValueError(
            f"Function '{function.name}' expected {expected} arguments but got '{len(function.args)}'."
        )


def _period(text):
    """A relative period such as -7d, 4h, "-1w 2d" (m is minutes), or None."""
    match = re.fullmatch(r"([-+]?)((?:\s*\d+\s*[wdhm])+)\s*", text)
    if not match:
        return None
    minutes = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
    total = sum(int(n) * minutes[u] for n, u in re.findall(r"(\d+)\s*([wdhm])", match[2]))
    return dt.timedelta(minutes=-total if match[1] == "-" else total)


def _shift(moment, months, days):
    """``moment`` plus calendar months (clamped to the month's length) and days."""
    if months:
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        last_day = (dt.date(year + (month == 11), (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
        moment = moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))
    return moment + dt.timedelta(days=days)


DATE_FUNCTIONS = {  # name: (unit, start?) — endOf* is the last microsecond of the period
    "startofday": ("d", True),
    "endofday": ("d", False),
    "startofweek": ("w", True),
    "endofweek": ("w", False),
    "startofmonth": ("M", True),
    "endofmonth": ("M", False),
    "startofyear": ("y", True),
    "endofyear": ("y", False),
}


# --- Fields ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    operators: frozenset
    compile: Callable
    order_by: tuple = ()


def _set_membership(has, is_empty):
    """The compile function of a field whose operands resolve to a set of ids.

    ``has(ids)`` is the Q of issues with a value among ``ids``, ``is_empty()`` of issues without
    a value; ``resolve(compiler, ctx, operands)`` turns values and functions into ids.
    """

    def build(resolve):
        def compile_(c, ctx):
            if ctx.op in ("is", "is not"):
                return is_empty() if ctx.op == "is" else ~is_empty()
            operands = [o for o in ctx.operands if not isinstance(o, Empty)]
            with_empty = len(operands) < len(ctx.operands)
            ids = resolve(c, ctx, operands) if operands else set()
            if ctx.positive:
                q = has(ids) if ids else MATCH_NOTHING
                return q | is_empty() if with_empty else q
            return ~is_empty() & ~has(ids) if ids else ~is_empty()

        return compile_

    return build


def _column(column):
    return _set_membership(lambda ids: Q(**{f"{column}__in": ids}), lambda: Q(**{f"{column}__isnull": True}))


def _related(model, fk, **match):
    """Membership through rows of ``model`` pointing at the issue by ``fk``."""

    def rows(**more):
        return model.objects.filter(**{fk: OuterRef("pk")}, **match, **more)

    return lambda target: _set_membership(
        lambda ids: Exists(rows(**{f"{target}__in": ids})), lambda: ~Exists(rows())
    )


def _m2m(through_field, target):
    through = Issue._meta.get_field(through_field).remote_field.through
    return _related(through, "issue_id")(target)


def _each(resolve_one):
    """A resolver of operands from a resolver of one operand."""

    def resolve(c, ctx, operands):
        return set().union(*(resolve_one(c, ctx, operand) for operand in operands))

    return resolve


def _named(model, *attrs):
    def resolve_one(c, ctx, operand):
        if isinstance(operand, Function):
            raise ctx.bad_function(operand)
        return c.ids_named(ctx, operand, c.table(model), *attrs)

    return _each(resolve_one)


@_each
def _resolve_status_category(c, ctx, operand):
    if isinstance(operand, Function):
        raise ctx.bad_function(operand)
    text = operand.text.strip().casefold()
    categories = {
        key for key, (cid, name, _) in STATUS_CATEGORIES.items() if text in (key, name.casefold(), str(cid))
    }
    if not categories:
        raise ctx.no_value(operand.text)
    return {s.pk for s in c.table(Status) if s.category in categories}


@_each
def _resolve_user(c, ctx, operand):
    if isinstance(operand, Value):
        return c.user_ids(ctx, operand)
    name = operand.name.lower()
    if name == "currentuser":
        _arity(operand, 0, 0)
        return {c.user.pk} if c.user is not None else set()
    if name == "membersof":
        _arity(operand, 1, 1)
        group = operand.args[0].strip().casefold()
        members = {u.pk for u in c.table(User) if group in {g.casefold() for g in u.groups}}
        if not members:
            raise JqlValueError(
                f"Function 'membersOf' can not generate a list of users for group '{operand.args[0]}'; "
                "the group does not exist."
            )
        return members
    raise ctx.bad_function(operand)


def _resolution(c, ctx):
    # "Unresolved" is the empty value spelt as a value.
    def unresolved(o):
        return isinstance(o, Value) and o.text.strip().casefold() == "unresolved"

    operands = tuple(Empty() if unresolved(o) else o for o in ctx.operands)
    ctx = _Ctx(ctx.typed, ctx.op, operands)
    return _column("resolution_id")(_named(Resolution, "name"))(c, ctx)


@_each
def _resolve_sprint(c, ctx, operand):
    if isinstance(operand, Function):
        states = {"opensprints": "active", "closedsprints": "closed", "futuresprints": "future"}
        if operand.name.lower() not in states:
            raise ctx.bad_function(operand)
        _arity(operand, 0, 0)
        return {s.pk for s in c.table(Sprint) if s.state == states[operand.name.lower()]}
    return c.ids_named(ctx, operand, c.table(Sprint), "name")


@_each
def _resolve_version(c, ctx, operand):
    if isinstance(operand, Function):
        wanted = {"releasedversions": True, "unreleasedversions": False}.get(operand.name.lower())
        if wanted is None:
            raise ctx.bad_function(operand)
        _arity(operand, 0, 1)
        versions = [v for v in c.table(Version) if v.released == wanted]
        if operand.args:
            projects = c.ids_named(ctx, Value(operand.args[0], True), c.table(Project), "key", "name")
            versions = [v for v in versions if v.project_id in projects]
        return {v.pk for v in versions}
    return c.ids_named(ctx, operand, c.table(Version), "name")


def _resolve_issues(c, ctx, operands):
    values = [o for o in operands if isinstance(o, Value)]
    ids = c.issue_ids(ctx, values) if values else set()
    for function in (o for o in operands if isinstance(o, Function)):
        ids |= _issue_function(c, ctx, function)
    return ids


def _issue_function(c, ctx, function):
    """Issues that ``linkedIssues(key[, link description])`` or ``watchedIssues()`` stand for."""
    name = function.name.lower()
    if name == "watchedissues":
        _arity(function, 0, 0)
        watched = Watcher.objects.filter(world=c.world, user=c.user) if c.user else Watcher.objects.none()
        return set(watched.values_list("issue_id", flat=True))
    if name != "linkedissues":
        raise ctx.bad_function(function)
    _arity(function, 1, 2)
    (issue,) = c.issue_ids(ctx, [Value(function.args[0], True)])
    links = IssueLink.objects.filter(world=c.world)
    # {inward: A, outward: B} reads "A <outward phrase> B" and "B <inward phrase> A"; the optional
    # argument is such a phrase ("blocks", "is blocked by"), as in Jira.
    from_it, to_it = Q(inward_issue_id=issue), Q(outward_issue_id=issue)
    if len(function.args) == 2:
        phrase = function.args[1].strip()
        from_it &= Q(type__outward__iexact=phrase)
        to_it &= Q(type__inward__iexact=phrase)
    linked = set()
    for inward, outward in links.filter(from_it | to_it).values_list("inward_issue_id", "outward_issue_id"):
        linked.add(outward if inward == issue else inward)
    return linked


def _issue_key(c, ctx):
    if ctx.op in RANGE:
        operand = ctx.single()
        match = isinstance(operand, Value) and re.fullmatch(
            r"\s*([A-Za-z][A-Za-z0-9_]*)-(\d+)\s*", operand.text
        )
        if not match:
            raise JqlValueError(f"The issue key '{_text(operand)}' for field '{ctx.typed}' is invalid.")
        project = c.ids_named(ctx, Value(match[1], False), c.table(Project), "key")
        return Q(project_id__in=project, **{f"number__{_LOOKUP[ctx.op]}": int(match[2])})
    if ctx.op in ("is", "is not"):  # every issue has a key
        return MATCH_NOTHING if ctx.op == "is" else ~MATCH_NOTHING
    values = [o for o in ctx.operands if not isinstance(o, Empty)]
    ids = _resolve_issues(c, ctx, values) if values else set()
    return Q(pk__in=ids) if ctx.positive else ~Q(pk__in=ids)


def _priority(c, ctx):
    if ctx.op not in RANGE:
        return _column("priority_id")(_named(Priority, "name"))(c, ctx)
    operand = ctx.single()
    if not isinstance(operand, Value):
        raise ctx.bad_function(operand)
    named = c.ids_named(ctx, operand, c.table(Priority), "name")
    rank = min(p.rank for p in c.table(Priority) if p.pk in named)
    # A greater priority is a smaller rank number: flip the comparison.
    flipped = {"<": "gt", ">": "lt", "<=": "gte", ">=": "lte"}[ctx.op]
    return Q(**{f"priority__rank__{flipped}": rank})


_LOOKUP = {"=": "exact", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}


def _text(operand):
    if isinstance(operand, Empty):
        return "EMPTY"
    return operand.text if isinstance(operand, Value) else f"{operand.name}()"


def _date(column, date_only=False):
    def compile_(c, ctx):
        if ctx.op in ("is", "is not"):
            return Q(**{f"{column}__isnull": ctx.op == "is"})
        operand = ctx.single()
        moment = c.moment(ctx, operand)
        op = ctx.op
        if date_only:
            # The field is midnight of its day: translate the comparison to whole days.
            local = moment.astimezone(c.tz)
            day, midnight = local.date(), local.time() == dt.time(0)
            if op in ("=", "!="):
                lookup = "exact"
            else:
                lookup = {
                    "<": "lt" if midnight else "lte",
                    "<=": "lte",
                    ">": "gt",
                    ">=": "gte" if midnight else "gt",
                }[op]
            value = day
        else:
            lookup, value = _LOOKUP.get(op, "exact"), moment
        q = Q(**{f"{column}__{lookup}": value})
        return Q(**{f"{column}__isnull": False}) & ~q if op == "!=" else q

    return compile_


def _number(column):
    def compile_(c, ctx):
        if ctx.op in ("is", "is not"):
            return Q(**{f"{column}__isnull": ctx.op == "is"})
        numbers = []
        for operand in ctx.operands:
            try:
                numbers.append(float(operand.text))
            except (AttributeError, ValueError):
                raise JqlValueError(
                    f"The value '{_text(operand)}' is not a valid number for the field '{ctx.typed}'."
                ) from None
        if ctx.op in RANGE:
            return Q(**{f"{column}__{_LOOKUP[ctx.op]}": numbers[0]})
        q = Q(**{f"{column}__in": numbers})
        return q if ctx.positive else Q(**{f"{column}__isnull": False}) & ~q

    return compile_


# --- Text search ----------------------------------------------------------------------------------

# Lucene's English stop words, which Jira's text search drops.
_STOP_WORDS_TEXT = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with"
)
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_SEP = "[^a-zA-Z0-9]"
_ENDINGS = "(e|s|es|d|ed|ing)?"
# In ADF JSON a word must sit inside the value of a "text" key (a text node), after the
# opening quote or a separator (an escape such as \n or \" counts as one).
_ADF_WORD_START = r'"text": ?"(([^"\\]|\\.)*([^a-zA-Z0-9"\\]|\\[^u]))?'


def _stem(word):
    for ending in ("ing", "ed", "es", "s", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _word_pattern(word):
    """The regular expression (valid for Python's re and PostgreSQL alike) of one query word."""
    if "*" in word or "?" in word:
        body = "".join({"*": "[a-zA-Z0-9]*", "?": "[a-zA-Z0-9]"}.get(ch, re.escape(ch)) for ch in word)
        return body if word.endswith("*") else body + f"({_SEP}|$)"
    return f"{re.escape(_stem(word))}{_ENDINGS}({_SEP}|$)"


def _text_patterns(ctx, query):
    """One pattern (without its start anchor) per term of a ``~`` query; all must match."""
    patterns = []
    for phrase, plain in re.findall(r'"([^"]*)"|([^"]+)', query):
        words = re.findall(r"(?:[^\W_]|[*?])+", (phrase or plain).lower())
        for word in words:
            if word[0] in "*?":
                raise JqlValueError(
                    f"The text query '{query}' for field '{ctx.typed}' is not valid: '*' and '?' are not "
                    "allowed as the first character of a wildcard search."
                )
        if phrase:
            if words:
                patterns.append(f"{_SEP}+".join(re.escape(w) for w in words) + f"({_SEP}|$)")
        else:
            kept = [w for w in words if w not in _STOP_WORDS] or words
            patterns.extend(_word_pattern(w) for w in kept)
    return patterns


def _matches(expression, patterns, adf):
    start = _ADF_WORD_START if adf else f"(^|{_SEP})"
    q = Q()
    for pattern in patterns:
        q &= Q(IRegex(expression, start + pattern))
    return q


def _text_field(summary=False, description=False, comment=False):
    def compile_(c, ctx):
        body_text = Cast("body", output_field=TextField())
        has_comment = Exists(Comment.objects.filter(issue=OuterRef("pk")))
        no_description = Q(description__isnull=True) | Q(description__content=[])
        if ctx.op in ("is", "is not"):
            if summary:  # every issue has one
                empty = MATCH_NOTHING
            elif description:
                empty = no_description
            else:
                empty = ~has_comment
            return empty if ctx.op == "is" else ~empty
        operand = ctx.single()
        if not isinstance(operand, Value):
            raise ctx.bad_function(operand)
        patterns = _text_patterns(ctx, operand.text)
        if not patterns:
            return MATCH_NOTHING if ctx.positive else ~MATCH_NOTHING
        found, present = [], []
        if summary:
            found.append(_matches(F("summary"), patterns, adf=False))
            present.append(~MATCH_NOTHING)
        if description:
            found.append(
                Q(description__isnull=False) & _matches(Cast("description", TextField()), patterns, adf=True)
            )
            present.append(~no_description)
        if comment:
            rows = Comment.objects.filter(issue=OuterRef("pk")).filter(
                _matches(body_text, patterns, adf=True)
            )
            found.append(Q(Exists(rows)))
            present.append(Q(has_comment))
        return _any(found) if ctx.positive else _any(present) & ~_any(found)

    return compile_


def _any(qs):
    result = MATCH_NOTHING
    for q in qs:
        result |= q
    return result


def _has_labels(names):
    return Exists(
        IssueLabel.objects.filter(issue=OuterRef("pk")).filter(_any(Q(name__iexact=n) for n in names))
    )


@_each
def _resolve_label(c, ctx, operand):  # labels are free text: any value is valid
    if isinstance(operand, Function):
        raise ctx.bad_function(operand)
    return {operand.text}


# --- The field table ------------------------------------------------------------------------------

_user_column = {col: _column(col)(_resolve_user) for col in ("assignee_id", "reporter_id", "creator_id")}

_KEY = _Field(EQUALITY | RANGE, _issue_key, ("project__key", "number"))
_ISSUE_TYPE = _Field(EQUALITY, _column("issue_type_id")(_named(IssueType, "name")), ("issue_type__name",))
_SPRINT = _Field(EQUALITY, _m2m("sprints", "sprint_id")(_resolve_sprint))
_STORY_POINTS = _Field(EQUALITY | RANGE, _number("story_points"), ("story_points",))
_CREATED = _Field(DATE, _date("created"), ("created",))
_UPDATED = _Field(DATE, _date("updated"), ("updated",))
_DUE = _Field(DATE, _date("due_date", date_only=True), ("due_date",))
_RESOLVED = _Field(DATE, _date("resolution_date"), ("resolution_date",))

FIELDS = {
    "project": _Field(EQUALITY, _column("project_id")(_named(Project, "key", "name")), ("project__name",)),
    "key": _KEY,
    "issuekey": _KEY,
    "id": _KEY,
    "issue": _KEY,
    "issuetype": _ISSUE_TYPE,
    "type": _ISSUE_TYPE,
    "status": _Field(EQUALITY, _column("status_id")(_named(Status, "name")), ("status__name",)),
    "statuscategory": _Field(EQUALITY, _column("status_id")(_resolve_status_category)),
    "priority": _Field(EQUALITY | RANGE, _priority, ("-priority__rank",)),
    "assignee": _Field(EQUALITY, _user_column["assignee_id"], ("assignee__display_name",)),
    "reporter": _Field(EQUALITY, _user_column["reporter_id"], ("reporter__display_name",)),
    "creator": _Field(EQUALITY, _user_column["creator_id"], ("creator__display_name",)),
    "watcher": _Field(EQUALITY, _related(Watcher, "issue_id")("user_id")(_resolve_user)),
    "labels": _Field(
        EQUALITY,
        _set_membership(_has_labels, lambda: ~Exists(IssueLabel.objects.filter(issue=OuterRef("pk"))))(
            _resolve_label
        ),
    ),
    "summary": _Field(TEXT, _text_field(summary=True), ("summary",)),
    "description": _Field(TEXT, _text_field(description=True)),
    "comment": _Field(TEXT, _text_field(comment=True)),
    "text": _Field(frozenset({"~", "!~"}), _text_field(summary=True, description=True, comment=True)),
    "resolution": _Field(EQUALITY, _resolution, ("resolution__name",)),
    "created": _CREATED,
    "createddate": _CREATED,
    "updated": _UPDATED,
    "updateddate": _UPDATED,
    "duedate": _DUE,
    "due": _DUE,
    "resolved": _RESOLVED,
    "resolutiondate": _RESOLVED,
    "sprint": _SPRINT,
    f"cf[{SPRINT_CF}]": _SPRINT,
    "parent": _Field(EQUALITY, _column("parent_id")(_resolve_issues)),
    "component": _Field(EQUALITY, _m2m("components", "component_id")(_named(Component, "name"))),
    "fixversion": _Field(EQUALITY, _m2m("fix_versions", "version_id")(_resolve_version)),
    "story points": _STORY_POINTS,
    "story point estimate": _STORY_POINTS,
    f"cf[{STORY_POINTS_CF}]": _STORY_POINTS,
    "rank": _Field(frozenset(), None, ("ext_id",)),  # no Rank field: creation order stands in
}

ALL_FUNCTIONS = {
    "currentuser",
    "membersof",
    "now",
    *DATE_FUNCTIONS,
    "opensprints",
    "closedsprints",
    "futuresprints",
    "releasedversions",
    "unreleasedversions",
    "linkedissues",
    "watchedissues",
}
