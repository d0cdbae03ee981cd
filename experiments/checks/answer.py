"""Checks on the episode's final answer (read tasks, and infeasible tasks that must say so)."""

import re

from experiments.checks import Outcome, Param, check, describe
from experiments.checks.compare import as_list, norm

_TRAILING = re.compile(r"[\s.!]+$")


def _clean(text):
    """Case, spacing, surrounding quotes and a final full stop do not matter."""
    text = norm(text).strip("\"'`")
    return _TRAILING.sub("", text)


@check(
    "answer",
    "answer",
    params={
        "equals": Param("scalar"),
        "contains": Param("strings", help="all of these"),
        "contains_any": Param("strings", help="at least one of these"),
        "excludes": Param("strings", help="none of these"),
        "regex": Param("str"),
    },
)
def answer(facts, params):
    """The final answer equals a value, contains texts (each one earns its share), contains any
    of a set of texts, excludes texts, or matches a regular expression (searched, any case)."""
    given = facts.final_answer
    if given is None:
        return Outcome(0, "expected a final answer, but the episode ended without one")
    shown = describe(given[:160])
    parts = []  # (ok, what was wanted)
    if params.get("equals") is not None:
        parts.append((_clean(given) == _clean(params["equals"]), f"equal to {describe(params['equals'])}"))
    for text in as_list(params.get("contains")):
        parts.append((_clean(text) in _clean(given), f"containing {describe(text)}"))
    if params.get("contains_any") is not None:
        options = as_list(params["contains_any"])
        parts.append(
            (any(_clean(t) in _clean(given) for t in options), f"containing one of {describe(options)}")
        )
    for text in as_list(params.get("excludes")):
        parts.append((_clean(text) not in _clean(given), f"not containing {describe(text)}"))
    if params.get("regex") is not None:
        parts.append(
            (re.search(params["regex"], given, re.I | re.S) is not None, f"matching /{params['regex']}/")
        )
    if not parts:
        return Outcome(1, f"any answer does; the answer was {shown}")
    missed = [want for ok, want in parts if not ok]
    if not missed:
        return Outcome(1, f"the answer {shown} is as expected")
    return Outcome(
        (len(parts) - len(missed)) / len(parts), f"the answer {shown} should be " + " and ".join(missed)
    )
