"""What every field's compile function shares: the operator sets, the clause on its way through
compilation (``Ctx``) and the Q building blocks."""

from dataclasses import dataclass

from django.db.models import Q

from simulator.jql.dates import DATE_FUNCTIONS
from simulator.jql.errors import JqlValueError
from simulator.jql.grammar import Empty, Value

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
LOOKUP = {"=": "exact", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}

MATCH_NOTHING = Q(pk__in=[])

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


@dataclass
class Ctx:
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


def operand_text(operand):
    """An operand as a message shows it."""
    if isinstance(operand, Empty):
        return "EMPTY"
    return operand.text if isinstance(operand, Value) else f"{operand.name}()"


def any_of(qs):
    result = MATCH_NOTHING
    for q in qs:
        result |= q
    return result
