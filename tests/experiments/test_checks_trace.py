"""Trace checks on the call list and the change log, passing and failing."""

import pytest

from tests.experiments.checking import check
from tests.experiments.worlds import Trace, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    world = build_world()
    trace = Trace(world.world, world.ada)
    trace.call("GET", "/rest/api/2/issue/OPS-1/transitions")
    trace.call("POST", "/rest/api/3/issue/OPS-1/transitions", {"transition": {"id": "31"}}, status=400)
    trace.call(
        "POST",
        f"/rest/api/latest/issue/{world.ops1.ext_id}/transitions",
        {"transition": {"id": "31"}, "fields": {"resolution": {"name": "Fixed"}}},
        status=204,
        changes=[
            ("update", "issue", "OPS-1", "status", "To Do", "Done"),
            ("update", "issue", "OPS-1", "resolution", None, "Fixed"),
        ],
    )
    trace.call("GET", "/rest/api/3/search/jql", query={"jql": "project = OPS"})
    world.trace = trace
    return world


def test_called_treats_rest_versions_alike_and_matches_an_issue_by_its_id(w):
    result = check(w.world, "called", {"call": "POST /rest/api/3/issue/OPS-1/transitions"})
    assert (
        result.passed
        and result.detail == "POST /rest/api/3/issue/OPS-1/transitions was made 1 time(s), as expected"
    )


def test_called_counts_only_successful_calls_unless_told(w):
    assert not check(w.world, "called", {"call": "POST /rest/api/*/issue/{key}/transitions", "min": 2}).passed
    assert check(
        w.world,
        "called",
        {"method": "POST", "path": "/rest/api/*/issue/{key}/transitions", "status": "any", "min": 2},
    ).passed
    assert check(w.world, "called", {"method": "POST", "path": "/rest/**/transitions", "status": 400}).passed


def test_double_star_matches_no_segment_as_well_as_several(w):
    # "GET the issue or anything under it": the transitions read counts, and so would the issue's
    assert check(w.world, "called", {"call": "GET /rest/api/3/issue/OPS-1/**"}).passed
    w.trace.call("GET", "/rest/api/3/issue/OPS-1")
    assert check(w.world, "called", {"call": "GET /rest/api/3/issue/OPS-1/**", "min": 2}).passed
    assert not check(w.world, "called", {"call": "GET /rest/api/3/issue/OPS-2/**"}).passed


def test_called_gives_partial_credit_below_min_and_fails_above_max(w):
    result = check(w.world, "called", {"call": "GET /rest/api/3/issue/{key}/transitions", "min": 2})
    assert result.score == 0.5
    assert not check(w.world, "called", {"path": "/rest/**", "method": "*", "max": 2}).passed


def test_called_matches_a_body_subset_and_query(w):
    assert check(
        w.world,
        "called",
        {
            "call": "POST /rest/api/3/issue/OPS-1/transitions",
            "body": {"fields": {"resolution": {"name": "Fixed"}}},
        },
    ).passed
    assert not check(
        w.world,
        "called",
        {"call": "POST /rest/api/3/issue/OPS-1/transitions", "body": {"transition": {"id": "11"}}},
    ).passed
    assert check(w.world, "called", {"call": "GET /rest/api/3/search/jql?jql=project = OPS"}).passed
    assert not check(
        w.world, "called", {"call": "GET /rest/api/3/search/jql", "query": {"jql": "project = WEB"}}
    ).passed


def test_called_does_not_match_another_issue_or_method(w):
    assert not check(w.world, "called", {"call": "POST /rest/api/3/issue/OPS-2/transitions"}).passed
    assert not check(w.world, "called", {"call": "PUT /rest/api/3/issue/OPS-1/transitions"}).passed


def test_not_called_fails_on_any_matching_call_whatever_its_status(w):
    result = check(
        w.world, "not_called", {"method": ["PUT", "POST"], "path": "/rest/api/3/issue/OPS-1/transitions"}
    )
    assert not result.passed
    assert "call #2 POST /rest/api/3/issue/OPS-1/transitions was (2 in all)" in result.detail
    assert check(w.world, "not_called", {"call": "DELETE /rest/api/3/issue/{key}"}).passed


def test_order_passes_for_a_subsequence_and_scores_how_far_it_got(w):
    in_order = [
        "GET /rest/api/3/issue/OPS-1/transitions",
        "POST /rest/api/3/issue/OPS-1/transitions",
        "GET /rest/api/3/search/jql",
    ]
    assert check(w.world, "order", {"calls": in_order}).passed
    reversed_ = check(w.world, "order", {"calls": [in_order[2], in_order[0]]})
    assert reversed_.score == 0.5 and not reversed_.passed
    assert "missing from there: GET /rest/api/3/issue/OPS-1/transitions" in reversed_.detail


def test_order_only_counts_calls_after_the_setup(w):
    first = ["GET /rest/api/3/issue/OPS-1/transitions"]
    assert check(w.world, "order", {"calls": first}).passed
    assert not check(w.world, "order", {"calls": first}, after_seq=1).passed


def test_max_calls_scores_the_budget_over_the_calls_made(w):
    assert check(w.world, "max_calls", {"max": 4}).passed
    result = check(w.world, "max_calls", {"max": 2})
    assert (result.passed, result.score) == (False, 0.5)


def test_no_errors_allows_some_and_costs_a_quarter_per_extra_error(w):
    assert check(w.world, "no_errors", {"allow": 1}).passed
    result = check(w.world, "no_errors", {})
    assert (result.passed, result.score) == (False, 0.75)
    assert "#2 POST /rest/api/3/issue/OPS-1/transitions → 400" in result.detail


def test_no_collateral_passes_when_writes_stay_on_the_allowed_objects(w):
    assert check(w.world, "no_collateral", {"allow": ["issue:OPS-1"]}).passed
    assert check(
        w.world,
        "no_collateral",
        {"allow": [{"type": "issue", "ref": "OPS-*", "fields": ["status", "resolution"]}]},
    ).passed


def test_no_collateral_fails_on_a_write_elsewhere_or_to_another_field(w):
    w.trace.call(
        "DELETE",
        "/rest/api/3/issue/OPS-2",
        status=204,
        changes=[("delete", "issue", "OPS-2", "", None, None)],
    )
    result = check(w.world, "no_collateral", {"allow": ["issue:OPS-1"]})
    assert (
        not result.passed and result.detail == "1 change(s) outside what the task allows: deleted issue OPS-2"
    )
    assert not check(w.world, "no_collateral", {"allow": ["issue:OPS-1:status", "issue:OPS-2"]}).passed
    assert not check(w.world, "no_collateral", {}).passed


def test_no_collateral_allows_objects_the_episode_created(w):
    w.trace.call(
        "POST",
        "/rest/api/3/issue",
        status=201,
        changes=[
            ("create", "issue", "OPS-4", "", None, None),
            ("create", "issue", "OPS-4", "summary", None, "x"),
        ],
    )
    w.trace.call(
        "PUT",
        "/rest/api/3/issue/OPS-4",
        status=204,
        changes=[("update", "issue", "OPS-4", "labels", [], ["a"])],
    )
    assert check(w.world, "no_collateral", {"allow": ["issue:new", "issue:OPS-1"]}).passed
    assert not check(w.world, "no_collateral", {"allow": ["issue:new"]}).passed  # OPS-1 was changed too
