"""State checks on Confluence pages."""

from experiments.checks import Outcome, Param, check, describe
from experiments.checks.compare import same_text, set_matches, text_matches
from simulator import selectors


def _parent_matches(expected, page):
    if expected is None:
        return page["parent_id"] is None
    return str(expected) == page["parent_id"] or same_text(expected, page["parent_title"])


def _version_matches(expected, version):
    if isinstance(expected, dict):
        return (expected.get("min") is None or version >= expected["min"]) and (
            expected.get("max") is None or version <= expected["max"]
        )
    return version == expected


# field name -> (compare(expected, page) -> bool, show(page) -> str)
PAGE_FIELDS = {
    "title": (lambda e, p: text_matches(e, p["title"]), lambda p: describe(p["title"])),
    "parent": (_parent_matches, lambda p: describe(p["parent_title"])),
    "body": (lambda e, p: text_matches(e, p["text"]), lambda p: describe(p["text"][:120])),
    "labels": (lambda e, p: set_matches(e, p["labels"]), lambda p: describe(p["labels"])),
    "version": (lambda e, p: _version_matches(e, p["version"]), lambda p: str(p["version"])),
    "status": (lambda e, p: same_text(e, p["status"]), lambda p: p["status"]),
    "space": (lambda e, p: same_text(e, p["space"]), lambda p: p["space"]),
}

TARGET = {
    "id": Param("scalar", help="the page id"),
    "space": Param("str", help="the space key"),
    "title": Param("str", help="the exact title (any case)"),
    "new": Param("bool", help="only pages created during the episode count"),
}


def _targets(facts, params):
    if params.get("id") is not None:
        found = selectors.find_pages(facts.world, id=params["id"])
        label = f"page {params['id']}"
    else:
        found = selectors.find_pages(
            facts.world, space_key=params.get("space"), title=params.get("title"), status="current"
        )
        label = "a page" + (f" titled {describe(params['title'])}" if params.get("title") else "")
        label += f" in space {params['space']}" if params.get("space") else ""
    if params.get("new"):
        found = [p for p in found if facts.is_new("page", p["id"])]
        label = "a new " + label.removeprefix("a ")
    return found, label


@check(
    "page_exists",
    "state",
    params={**TARGET, "exists": Param("bool", help="false: must not exist")},
    one_of=("id", "title"),
)
def page_exists(facts, params):
    """A current page with this id, or this title in this space, exists (or, with ``exists:
    false``, does not)."""
    found, label = _targets(facts, params)
    want = params.get("exists", True)
    if bool(found) == want:
        return Outcome(1, f"{label} {'exists' if want else 'does not exist'}, as expected")
    if want:
        return Outcome(0, f"expected {label}, found none")
    return Outcome(0, f"expected no such page, found page {found[-1]['id']} {describe(found[-1]['title'])}")


@check(
    "page_fields",
    "state",
    params={
        **TARGET,
        "fields": Param(
            "dict",
            required=True,
            keys=tuple(PAGE_FIELDS),
            help="field: expected value; each field earns an equal share",
        ),
    },
    one_of=("id", "title"),
)
def page_fields(facts, params):
    """The page's title, parent (title or id), body text, labels, version, status have the
    expected values; each field right earns its share."""
    found, label = _targets(facts, params)
    fields = params["fields"]
    if not found:
        return Outcome(0, f"expected {label} with {len(fields)} field(s) set, found no such page")

    def results(page):
        return [
            (name, exp, PAGE_FIELDS[name][0](exp, page), PAGE_FIELDS[name][1](page))
            for name, exp in fields.items()
        ]

    best = max(found, key=lambda p: sum(r[2] for r in results(p)))
    res = results(best)
    right = [name for name, _, ok, _ in res if ok]
    wrong = [f"{name} should be {describe(exp)} but is {got}" for name, exp, ok, got in res if not ok]
    title = describe(best["title"])
    if not wrong:
        return Outcome(1, f"page {title} has every expected field: {', '.join(right)}")
    return Outcome(
        len(right) / len(fields),
        f"page {title} has {len(right)} of {len(fields)} fields right; " + "; ".join(wrong),
    )
