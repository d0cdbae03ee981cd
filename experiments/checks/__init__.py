"""The check types a task can use, each declared once with its parameters.

A check type is a function ``run(facts, params) -> Outcome`` registered with ``@check(...)``;
its parameter declarations are what the suite loader validates YAML against (unknown
parameters, wrong types, missing ones), so a new check type needs nothing but its function.

Groups: ``state`` checks read the final world, ``answer`` checks the episode's final answer,
``trace`` checks the call list and the change log. The dense reward preset weighs them apart.
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from simulator import selectors

# Parameter kinds the loader knows how to validate.
KINDS = {
    "str": "a string",
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
    "strings": "a string or a list of strings",
    "scalar": "a string, number, true/false or null",
    "any": "any value",
    "call": "a call pattern ('METHOD /path' or a mapping of method, path, body, query, status)",
    "calls": "a list of call patterns",
    "allow": "a list of objects ('type:ref' or 'type:ref:field', or mappings of type, ref, fields)",
}


@dataclass(frozen=True)
class Param:
    kind: str
    required: bool = False
    help: str = ""
    keys: tuple = ()  # for kind "dict": the keys it may have (empty = any)
    choices: tuple = ()


@dataclass(frozen=True)
class CheckType:
    name: str
    group: str  # state | answer | trace
    params: dict
    run: Any
    required: bool  # whether checks of this type are required for success unless told otherwise
    shorthand: str | None  # the parameter a bare value stands for: `max_calls: 8`
    one_of: tuple  # parameter names of which exactly one must be given
    doc: str


CHECK_TYPES = {}
COMMON_KEYS = {"name", "weight", "required"}


def check(name, group, *, params, required=True, shorthand=None, one_of=()):
    def register(run):
        CHECK_TYPES[name] = CheckType(
            name, group, params, run, required, shorthand, tuple(one_of), run.__doc__ or ""
        )
        return run

    return register


@dataclass
class Outcome:
    score: float
    detail: str
    passed: bool | None = None  # None: passed when the score is 1

    def __post_init__(self):
        self.score = max(0.0, min(1.0, float(self.score)))
        if self.passed is None:
            self.passed = self.score >= 1.0 - 1e-9


@dataclass
class Facts:
    """What the checks of one verification read, each fetched once and shared."""

    world: Any
    final_answer: str | None = None
    after_seq: int = 0
    _issues: dict = field(default_factory=dict)

    @cached_property
    def calls(self):
        return selectors.calls(self.world, after_seq=self.after_seq)

    @cached_property
    def changes(self):
        return selectors.changes(self.world, after_seq=self.after_seq)

    @cached_property
    def created(self):
        """(object_type, object_ref) of every object the episode created."""
        return {(c["object_type"], c["object_ref"]) for c in self.changes if c["action"] == "create"}

    def is_new(self, object_type, *refs):
        return any((object_type, str(ref)) in self.created for ref in refs if ref is not None)

    def issue(self, key):
        key = str(key).upper()
        if key not in self._issues:
            self._issues[key] = selectors.issue_state(self.world, key)
        return self._issues[key]


def describe(value):
    """A value as a detail sentence shows it."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return str(value)


# Importing the modules registers their check types.
from experiments.checks import answer, confluence, jira, trace  # noqa: E402, F401
