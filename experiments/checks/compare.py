"""How an expected value is compared with what a world holds: sensible about case and spacing,
strict about values."""

import re

_SPACE = re.compile(r"\s+")
_CATEGORY_NAMES = {"to do": "new", "in progress": "indeterminate", "done": "done"}


def norm(text):
    """Case-folded, whitespace collapsed and trimmed."""
    return _SPACE.sub(" ", str(text)).strip().casefold()


def same_text(expected, actual):
    return actual is not None and norm(expected) == norm(actual)


def contains_text(haystack, needle):
    return norm(needle) in norm(haystack or "")


def user_matches(expected, user):
    """``expected``: None (no user), an accountId, email or display name, or a mapping of some of
    accountId / email / displayName."""
    if expected is None:
        return user is None
    if user is None:
        return False
    if isinstance(expected, dict):
        return all(same_text(v, user.get(k)) for k, v in expected.items())
    text = str(expected)
    return text == user["accountId"] or same_text(text, user["email"]) or same_text(text, user["displayName"])


def show_user(user):
    return "nobody" if user is None else f"{user['displayName']} ({user['accountId']})"


def named_matches(expected, actual):
    """Names (status, priority, type, resolution, ...): any case; a mapping's ``name`` counts."""
    if isinstance(expected, dict):
        expected = expected.get("name", expected.get("key", expected.get("id")))
    if expected is None:
        return actual is None
    return same_text(expected, actual)


def category_matches(expected, actual):
    key = norm(expected)
    return _CATEGORY_NAMES.get(key, key) == actual


def set_matches(expected, actual, *, fold=False):
    """A list = exactly these (any order); a mapping of ``equals`` / ``contains`` / ``excludes``."""
    key = norm if fold else str
    have = {key(a) for a in actual}
    rules = expected if isinstance(expected, dict) else {"equals": expected}
    for rule, values in rules.items():
        want = {key(v) for v in as_list(values)}
        if rule == "equals" and want != have:
            return False
        if rule == "contains" and not want <= have:
            return False
        if rule == "excludes" and want & have:
            return False
    return True


def text_matches(expected, actual):
    """A string = equal (case and spacing aside); a mapping of ``equals`` / ``contains`` (one or
    a list, all needed) / ``excludes``."""
    rules = expected if isinstance(expected, dict) else {"equals": expected}
    for rule, values in rules.items():
        if rule == "equals" and not same_text(values, actual):
            return False
        if rule == "contains" and not all(contains_text(actual, v) for v in as_list(values)):
            return False
        if rule == "excludes" and any(contains_text(actual, v) for v in as_list(values)):
            return False
    return True


def number_matches(expected, actual):
    if expected is None or actual is None:
        return expected is actual
    try:
        return abs(float(expected) - float(actual)) < 1e-9
    except (TypeError, ValueError):
        return False


def subset_matches(expected, actual):
    """Whether ``actual`` holds ``expected``: mappings key by key, lists element by element
    (each expected element somewhere in the list), scalars equal (strings as strings)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset_matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(subset_matches(e, a) for a in actual) for e in expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return number_matches(expected, actual)
    return expected == actual or (
        expected is not None and actual is not None and str(expected) == str(actual)
    )


def as_list(value):
    """None as [], one value as [value], a list as it is."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
