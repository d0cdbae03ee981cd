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
estimate", cf[10016]]; ``rank`` only in ORDER BY (the board order the rank API sets). Functions:
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

The package, by concern: ``grammar`` (the lark grammar, the syntax tree, syntax errors),
``compiler`` (names to primary keys, NOT pushed down, ORDER BY; the per-world cache of compiled
queries), ``fields`` (the field table), ``text`` (``~``), ``dates`` (date values and functions),
``clause`` (operators and what every field's compile function shares), ``errors``.
"""

from simulator.jql.compiler import JqlQuery, compile_jql
from simulator.jql.errors import JqlError, JqlSyntaxError, JqlUnboundedError, JqlValueError
from simulator.jql.fields import FIELDS, SPRINT_CF, STORY_POINTS_CF
from simulator.jql.grammar import GRAMMAR, parse_jql

__all__ = [
    "FIELDS",
    "GRAMMAR",
    "SPRINT_CF",
    "STORY_POINTS_CF",
    "JqlError",
    "JqlQuery",
    "JqlSyntaxError",
    "JqlUnboundedError",
    "JqlValueError",
    "compile_jql",
    "parse_jql",
]
