"""From a parsed query to Django ORM filters: ``compile_jql(world, text, user=...)``.

Compiling resolves the names a query uses (projects, statuses, users, ...) to primary keys of
the world's rows, so a compiled query belongs to one world and one searching user. Most queries
depend on nothing else: those are cached on the world's in-memory configuration
(``simulator.world_config``), which cannot change through the API, keyed by text and user. A
query that reads the world's clock (``now()``, ``startOfDay()``, relative dates such as
``-7d``) or rows that calls change (sprints, issue keys, watchers, links) is compiled again
for each call, from its cached parse, so its answer follows the world's state and clock and
stays deterministic per world.
"""

import dataclasses
import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from simulator.jql.clause import NEGATED, Ctx
from simulator.jql.dates import moment
from simulator.jql.errors import JqlUnboundedError, JqlValueError
from simulator.jql.fields import FIELDS
from simulator.jql.grammar import BoolOp, parse_jql
from simulator.models import Issue, User
from simulator.prepared import prepared_query, raw_instances
from simulator.world_config import cached_config

UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
_CACHE_SIZE = 256  # compiled queries kept per world


@dataclass
class JqlQuery:
    """A compiled query: ``apply`` filters a queryset to the world and the query, and orders it."""

    world: object
    text: str
    where: Q | None
    ordering: tuple
    bounded: bool
    # The cached compilation this query came from (None when it is compiled for this call only).
    compiled: "_Compiled | None" = None

    def apply(self, issues: QuerySet[Issue]) -> QuerySet[Issue]:
        issues = issues.filter(world=self.world)
        if self.where is not None:
            issues = issues.filter(self.where)
        return issues.order_by(*self.ordering)

    def issue_rows(self, start, count, columns=None):
        """Issues ``start`` .. ``start + count`` of the world's matches, as model instances, with
        ``columns`` ({attribute: SQL of a column, no parameters}) beside their own. A cached
        query keeps its SQL, built once by Django, and runs it with LIMIT/OFFSET added, prepared
        on PostgreSQL (simulator.prepared.prepared_query)."""
        compiled = self.compiled
        key = tuple(sorted((columns or {}).items()))
        cached = compiled is not None and self.ordering == compiled.ordering
        if cached and compiled.sql.get(key):
            sql, params = compiled.sql[key]
            params = [*params, count, start]
            return raw_instances(Issue, prepared_query(sql, params), params)
        # The columns' SQL comes from the code (simulator.handlers.jira_issue_json), never a request.
        extra = {name: RawSQL(sql, ()) for name, sql in (columns or {}).items()}  # noqa: S611
        issues = self.apply(Issue.objects.all()).annotate(**extra)
        if cached and key not in compiled.sql:
            try:
                sql, params = issues.query.sql_with_params()
            except EmptyResultSet:  # a WHERE that can match nothing: the ORM answers it unasked
                compiled.sql[key] = None
            else:
                compiled.sql[key] = f"{sql} LIMIT %s OFFSET %s", params
                return self.issue_rows(start, count, columns)
        return list(issues[start : start + count])


@dataclass
class _Compiled:
    """What the cache keeps of a query compiled for one world and user."""

    where: Q | None
    ordering: tuple
    # (sql, params) of the whole match with LIMIT/OFFSET, by the extra columns, once asked for
    sql: dict = dataclasses.field(default_factory=dict)


def compile_jql(world, jql_text, *, user, require_bounded=False):
    """Parse and compile ``jql_text`` for ``user`` in ``world``; raise ``JqlError`` subclasses."""
    where, order = parse_jql(jql_text or "")
    if require_bounded and where is None:
        raise JqlUnboundedError(UNBOUNDED)
    config = cached_config(world)
    cache = getattr(config, "compiled_jql", None) if config is not None else None
    key = (jql_text or "", getattr(user, "pk", None), getattr(user, "time_zone", None))
    compiled = cache.get(key) if cache is not None else None
    if compiled is None:
        compiler = _Compiler(world, user)
        q = compiler.compile(where) if where is not None else None
        terms = tuple(term for name, descending in order for term in compiler.order_term(name, descending))
        compiled = _Compiled(q, (*terms, "ext_id"))
        if cache is None or compiler.volatile:
            return JqlQuery(world, jql_text, q, compiled.ordering, bounded=where is not None)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = compiled
    return JqlQuery(world, jql_text, compiled.where, compiled.ordering, where is not None, compiled)


class _Compiler:
    def __init__(self, world, user):
        self.world, self.user = world, user
        try:
            self.tz = zoneinfo.ZoneInfo(getattr(user, "time_zone", None) or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.tz = dt.UTC
        self._tables = {}
        self._now = None
        # Whether the result depends on more than the text, the user and the world's fixed
        # configuration (then it must not be cached).
        self.volatile = False

    @property
    def now(self):
        """The world's clock (a query that reads it is compiled again for every call)."""
        self.volatile = True
        if self._now is None:
            self._now = self.world.now()
        return self._now

    def reads_state(self):
        """The query depends on rows calls change (issues, sprints, watchers, links)."""
        self.volatile = True

    def table(self, model):
        """Every row of a small configuration table of this world, loaded once per compile."""
        if model not in self._tables:
            # A world in use has its configuration in memory (simulator.world_config); sprints
            # change, and a world nobody called yet is read table by table, as needed.
            config = cached_config(self.world)
            rows = config.rows.get(model) if config is not None else None
            if rows is None:
                self.reads_state()
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
        return field.compile(self, Ctx(node.field, op, node.operands))

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
        self.reads_state()
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

    def moment(self, ctx, operand):
        """The aware datetime a date value or date function stands for."""
        return moment(lambda: self.now, self.tz, ctx, operand)
