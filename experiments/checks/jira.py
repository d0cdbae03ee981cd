"""State checks on Jira: issues, their fields, counts by JQL, comments and links."""

from experiments.checks import Outcome, Param, check, describe
from experiments.checks.compare import (
    as_list,
    category_matches,
    contains_text,
    named_matches,
    number_matches,
    same_text,
    set_matches,
    show_user,
    text_matches,
    user_matches,
)
from simulator import selectors


def _sprint_matches(expected, sprints):
    if expected is None:
        return not sprints
    if isinstance(expected, dict):
        expected = expected.get("name", expected.get("id"))
    return any(str(expected) == str(s["id"]) or same_text(expected, s["name"]) for s in sprints)


def _date_matches(expected, actual):
    return (expected is None and actual is None) or (expected is not None and str(expected) == actual)


# field name -> (compare(expected, state) -> bool, show(state) -> str)
ISSUE_FIELDS = {
    "summary": (lambda e, s: text_matches(e, s["summary"]), lambda s: describe(s["summary"])),
    "description": (lambda e, s: text_matches(e, s["description"]), lambda s: describe(s["description"])),
    "project": (lambda e, s: named_matches(e, s["project"]), lambda s: s["project"]),
    "type": (lambda e, s: named_matches(e, s["type"]), lambda s: describe(s["type"])),
    "status": (lambda e, s: named_matches(e, s["status"]), lambda s: describe(s["status"])),
    "status_category": (
        lambda e, s: category_matches(e, s["status_category"]),
        lambda s: s["status_category"],
    ),
    "priority": (lambda e, s: named_matches(e, s["priority"]), lambda s: describe(s["priority"])),
    "resolution": (lambda e, s: named_matches(e, s["resolution"]), lambda s: describe(s["resolution"])),
    "assignee": (lambda e, s: user_matches(e, s["assignee"]), lambda s: show_user(s["assignee"])),
    "reporter": (lambda e, s: user_matches(e, s["reporter"]), lambda s: show_user(s["reporter"])),
    "labels": (lambda e, s: set_matches(e, s["labels"]), lambda s: describe(s["labels"])),
    "components": (
        lambda e, s: set_matches(e, s["components"], fold=True),
        lambda s: describe(s["components"]),
    ),
    "fix_versions": (
        lambda e, s: set_matches(e, s["fix_versions"], fold=True),
        lambda s: describe(s["fix_versions"]),
    ),
    "parent": (lambda e, s: named_matches(e, s["parent"]), lambda s: describe(s["parent"])),
    "sprint": (
        lambda e, s: _sprint_matches(e, s["sprints"]),
        lambda s: describe([x["name"] for x in s["sprints"]]),
    ),
    "due_date": (lambda e, s: _date_matches(e, s["due_date"]), lambda s: describe(s["due_date"])),
    "story_points": (
        lambda e, s: number_matches(e, s["story_points"]),
        lambda s: describe(s["story_points"]),
    ),
}
WHERE_KEYS = (
    "key",
    "project",
    "summary",
    "summary_contains",
    "type",
    "status",
    "assignee",
    "reporter",
    "label",
    "parent",
)

TARGET = {
    "issue": Param("str", help="the issue's key or id"),
    "where": Param("dict", keys=WHERE_KEYS, help="criteria that find the issue when its key is not known"),
    "new": Param("bool", help="only issues created during the episode count"),
}


def _targets(facts, params):
    """The issues a check is about, and how to name them in a detail sentence."""
    if params.get("issue") is not None:
        state = facts.issue(params["issue"])
        found, label = ([state] if state else []), f"issue {params['issue']}"
    else:
        where = params.get("where") or {}
        found = selectors.find_issues(facts.world, **where)
        label = "an issue with " + ", ".join(f"{k} {describe(v)}" for k, v in where.items())
    if params.get("new"):
        found = [s for s in found if facts.is_new("issue", s["key"], s["id"])]
        label = "a new " + label.removeprefix("an ")
    return found, label


@check(
    "issue_exists",
    "state",
    params={**TARGET, "exists": Param("bool", help="false: must not exist")},
    one_of=("issue", "where"),
)
def issue_exists(facts, params):
    """The issue exists (or, with ``exists: false``, does not)."""
    found, label = _targets(facts, params)
    want = params.get("exists", True)
    if bool(found) == want:
        return Outcome(
            1,
            f"{label} {'exists' if want else 'does not exist'}, as expected"
            + (f": {found[-1]['key']}" if found else ""),
        )
    if want:
        return Outcome(0, f"expected {label}, found none")
    return Outcome(0, f"expected no {label.removeprefix('an ').removeprefix('a ')}, found {found[-1]['key']}")


def _field_results(fields, state):
    results = []
    for name, expected in fields.items():
        compare, show = ISSUE_FIELDS[name]
        results.append((name, expected, compare(expected, state), show(state)))
    return results


@check(
    "issue_fields",
    "state",
    params={
        **TARGET,
        "fields": Param(
            "dict",
            required=True,
            keys=tuple(ISSUE_FIELDS),
            help="field: expected value; each field earns an equal share",
        ),
    },
    one_of=("issue", "where"),
)
def issue_fields(facts, params):
    """The issue's fields have the expected values; each field right earns its share of the
    score (with ``where``, the best-matching issue counts)."""
    found, label = _targets(facts, params)
    fields = params["fields"]
    if not found:
        return Outcome(0, f"expected {label} with {len(fields)} field(s) set, found no such issue")
    scored = [(sum(r[2] for r in _field_results(fields, s)), s) for s in found]
    best_score, best = max(scored, key=lambda pair: pair[0])
    results = _field_results(fields, best)
    wrong = [f"{name} should be {describe(exp)} but is {got}" for name, exp, ok, got in results if not ok]
    right = [name for name, _, ok, _ in results if ok]
    if not wrong:
        return Outcome(1, f"{best['key']} has every expected field: {', '.join(right)}")
    return Outcome(
        best_score / len(fields),
        f"{best['key']} has {len(right)} of {len(fields)} fields right; " + "; ".join(wrong),
    )


@check(
    "issue_count",
    "state",
    params={
        "jql": Param("str", required=True),
        "as": Param("str", help="accountId for currentUser()"),
        "equals": Param("int"),
        "min": Param("int"),
        "max": Param("int"),
    },
)
def issue_count(facts, params):
    """The number of issues a JQL query finds is ``equals`` (or within ``min``..``max``)."""
    try:
        keys = selectors.issues_matching(facts.world, params["jql"], params.get("as"))
    except (ValueError, ImportError) as err:  # simulator.jql.JqlError is a ValueError
        return Outcome(0, f"the query {params['jql']!r} could not run: {err}")
    n = len(keys)
    bounds = []
    if params.get("equals") is not None:
        bounds.append(n == params["equals"])
        want = f"exactly {params['equals']}"
    else:
        lo, hi = params.get("min"), params.get("max")
        bounds += [lo is None or n >= lo, hi is None or n <= hi]
        want = f"between {lo if lo is not None else 0} and {hi if hi is not None else 'any number of'}"
    shown = ", ".join(keys[:10]) + (" ..." if n > 10 else "")
    return Outcome(
        float(all(bounds)),
        f"{params['jql']!r} should find {want} issues; it finds {n}" + (f" ({shown})" if n else ""),
    )


@check(
    "comment_exists",
    "state",
    params={
        "issue": Param("str", required=True),
        "contains": Param("strings"),
        "mentions": Param("strings"),
        "author": Param("scalar"),
        "new": Param("bool", help="only comments added during the episode"),
        "exists": Param("bool"),
    },
)
def comment_exists(facts, params):
    """A comment on the issue contains every ``contains`` text (ADF flattened, any case), mentions
    every ``mentions`` accountId and is by ``author``; partial credit for the best comment."""
    key = params["issue"]
    found = selectors.comments(facts.world, key)
    if params.get("new"):
        found = [c for c in found if facts.is_new("comment", c["id"], f"{key}/{c['id']}")]
    wants = [("contains", t) for t in as_list(params.get("contains"))]
    wants += [("mentions", m) for m in as_list(params.get("mentions"))]
    if params.get("author") is not None:
        wants.append(("author", params["author"]))

    def hits(comment):
        return [w for w in wants if _comment_has(comment, *w)]

    if params.get("exists", True) is False:
        bad = [c for c in found if len(hits(c)) == len(wants)]
        if bad:
            return Outcome(
                0, f"expected no such comment on {key}, found comment {bad[0]['id']}: {bad[0]['text'][:80]!r}"
            )
        return Outcome(1, f"{key} has no such comment, as expected")
    if not found:
        return Outcome(0, f"expected a {'new ' if params.get('new') else ''}comment on {key}, found none")
    best = max(found, key=lambda c: len(hits(c)))
    got = hits(best)
    if len(got) == len(wants):
        return Outcome(1, f"comment {best['id']} on {key} has everything expected")
    missing = [f"{kind} {describe(v)}" for kind, v in wants if (kind, v) not in got]
    return Outcome(
        len(got) / len(wants),
        f"the closest comment on {key} ({best['text'][:80]!r}) lacks: " + "; ".join(missing),
    )


def _comment_has(comment, kind, value):
    if kind == "contains":
        return contains_text(comment["text"], value)
    if kind == "mentions":
        return str(value) in comment["mentions"]
    return user_matches(value, comment["author"])


@check(
    "link_exists",
    "state",
    params={
        "type": Param("str", required=True, help="link type name, or its outward/inward phrase"),
        "from": Param("str", required=True),
        "to": Param("str", required=True),
        "directed": Param("bool", help="false: either direction counts"),
        "exists": Param("bool"),
    },
)
def link_exists(facts, params):
    """Issue ``from`` is linked to ``to`` with the type: "A blocks B" is ``{type: Blocks, from: A,
    to: B}``; the inward phrase reads the other way (``is blocked by``)."""
    a, b, kind = str(params["from"]).upper(), str(params["to"]).upper(), params["type"]
    want = params.get("exists", True)
    matched = None
    for link in selectors.links(facts.world, a):
        if same_text(kind, link["type"]) or same_text(kind, link["outward"]):
            ends = (link["from"], link["to"])
        elif same_text(kind, link["inward"]):
            ends = (link["to"], link["from"])
        else:
            continue
        if ends == (a, b) or (params.get("directed", True) is False and ends == (b, a)):
            matched = link
            break
    phrase = f"{a} {kind} {b}"
    if bool(matched) == want:
        return Outcome(1, f"link '{phrase}' {'exists' if want else 'is absent'}, as expected")
    if want:
        others = [f"{x['from']} {x['outward']} {x['to']}" for x in selectors.links(facts.world, a)]
        return Outcome(
            0, f"expected link '{phrase}', found " + ("; ".join(others) if others else "no links on " + a)
        )
    return Outcome(0, f"expected no link '{phrase}', found link {matched['id']}")
