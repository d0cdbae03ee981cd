"""The JQL field table: for each field (and alias) the operators it takes, how a clause on it
compiles to a Q, and what ORDER BY sorts it by.

A compile function is ``compile_(compiler, ctx) -> Q``; values of fields with a fixed value set
(projects, statuses, users, ...) resolve to primary keys through ``compiler.table(model)``.
"""

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from simulator.jql.clause import DATE, EQUALITY, LOOKUP, MATCH_NOTHING, RANGE, TEXT, Ctx, any_of, operand_text
from simulator.jql.errors import JqlValueError, check_arity
from simulator.jql.grammar import Empty, Function, Value
from simulator.jql.text import text_field
from simulator.models import (
    STATUS_CATEGORIES,
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

STORY_POINTS_CF = 10016  # customfield_10016, as the field catalogue shows it
SPRINT_CF = 10020


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
        check_arity(operand, 0, 0)
        return {c.user.pk} if c.user is not None else set()
    if name == "membersof":
        check_arity(operand, 1, 1)
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
    ctx = Ctx(ctx.typed, ctx.op, operands)
    return _column("resolution_id")(_named(Resolution, "name"))(c, ctx)


@_each
def _resolve_sprint(c, ctx, operand):
    if isinstance(operand, Function):
        states = {"opensprints": "active", "closedsprints": "closed", "futuresprints": "future"}
        if operand.name.lower() not in states:
            raise ctx.bad_function(operand)
        check_arity(operand, 0, 0)
        return {s.pk for s in c.table(Sprint) if s.state == states[operand.name.lower()]}
    return c.ids_named(ctx, operand, c.table(Sprint), "name")


@_each
def _resolve_version(c, ctx, operand):
    if isinstance(operand, Function):
        wanted = {"releasedversions": True, "unreleasedversions": False}.get(operand.name.lower())
        if wanted is None:
            raise ctx.bad_function(operand)
        check_arity(operand, 0, 1)
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
    c.reads_state()
    name = function.name.lower()
    if name == "watchedissues":
        check_arity(function, 0, 0)
        watched = Watcher.objects.filter(world=c.world, user=c.user) if c.user else Watcher.objects.none()
        return set(watched.values_list("issue_id", flat=True))
    if name != "linkedissues":
        raise ctx.bad_function(function)
    check_arity(function, 1, 2)
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
            raise JqlValueError(
                f"The issue key '{operand_text(operand)}' for field '{ctx.typed}' is invalid."
            )
        project = c.ids_named(ctx, Value(match[1], False), c.table(Project), "key")
        return Q(project_id__in=project, **{f"number__{LOOKUP[ctx.op]}": int(match[2])})
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
            lookup, value = LOOKUP.get(op, "exact"), moment
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
                    f"The value '{operand_text(operand)}' is not a valid number for the field '{ctx.typed}'."
                ) from None
        if ctx.op in RANGE:
            return Q(**{f"{column}__{LOOKUP[ctx.op]}": numbers[0]})
        q = Q(**{f"{column}__in": numbers})
        return q if ctx.positive else Q(**{f"{column}__isnull": False}) & ~q

    return compile_


def _has_labels(names):
    return Exists(
        IssueLabel.objects.filter(issue=OuterRef("pk")).filter(any_of(Q(name__iexact=n) for n in names))
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
    "summary": _Field(TEXT, text_field(summary=True), ("summary",)),
    "description": _Field(TEXT, text_field(description=True)),
    "comment": _Field(TEXT, text_field(comment=True)),
    "text": _Field(frozenset({"~", "!~"}), text_field(summary=True, description=True, comment=True)),
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
    # Ranked issues in rank order, then the unranked (new ones rank last), oldest first.
    "rank": _Field(frozenset(), None, ("rank",)),
}
