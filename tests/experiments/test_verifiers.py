"""Rewards from checks: the presets, partial credit, the format penalty, success."""

import pytest

from experiments.verifiers import verify
from tests.experiments.checking import variant
from tests.experiments.worlds import Trace, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    world = build_world()
    trace = Trace(world.world, world.ada)
    trace.call("GET", "/rest/api/3/issue/OPS-1")
    trace.call(
        "PUT",
        "/rest/api/3/issue/OPS-1",
        {"fields": {"priority": {"name": "Medium"}}},
        status=204,
        changes=[("update", "issue", "OPS-1", "priority", "High", "Medium")],
    )
    world.ops1.priority = world.medium  # what the PUT did
    world.ops1.save()
    world.trace = trace
    return world


HALF_RIGHT = ("issue_fields", {"issue": "OPS-1", "fields": {"priority": "High", "status": "To Do"}})
CALLED_PUT = ("called", {"call": "PUT /rest/api/3/issue/OPS-1"})
NO_COLLATERAL = ("no_collateral", {"allow": ["issue:OPS-1"]})


def test_dense_weighs_arguments_calls_and_hygiene(w):
    verdict = verify(w.world, variant([HALF_RIGHT], [CALLED_PUT, NO_COLLATERAL]), final_answer="done")
    assert verdict.reward == pytest.approx(0.6 * 0.5 + 0.2 * 1 + 0.2 * 1)
    assert verdict.breakdown["components"]["arguments"] == {"weight": 0.6, "score": 0.5}
    assert not verdict.success
    assert [c.name for c in verdict.checks] == ["issue_fields", "called", "no_collateral"]


def test_dense_counts_ending_without_a_final_answer_against_hygiene(w):
    verdict = verify(w.world, variant([HALF_RIGHT], [CALLED_PUT, NO_COLLATERAL]), final_answer=None)
    assert verdict.reward == pytest.approx(0.6 * 0.5 + 0.2 * 1 + 0.2 * 0.5)


def test_dense_gives_a_missing_components_weight_to_the_others(w):
    verdict = verify(w.world, variant([HALF_RIGHT]), final_answer="done")
    assert verdict.reward == pytest.approx(0.75 * 0.5 + 0.25 * 1)
    assert verdict.breakdown["components"]["calls"] == {"weight": 0.0, "score": None}


def test_dense_components_can_be_reweighted(w):
    reward = {"preset": "dense", "components": {"arguments": 1, "calls": 0, "hygiene": 0}}
    verdict = verify(w.world, variant([HALF_RIGHT], [CALLED_PUT], reward=reward), final_answer="done")
    assert verdict.reward == pytest.approx(0.5)


def test_binary_is_one_only_when_every_required_check_passes(w):
    right = ("issue_fields", {"issue": "OPS-1", "fields": {"priority": "Medium"}})
    over_budget = ("max_calls", {"max": 1})  # not required by default
    passing = verify(
        w.world, variant([right], [CALLED_PUT, over_budget], reward={"preset": "binary"}), final_answer="ok"
    )
    assert (passing.reward, passing.success) == (1.0, True)
    failing = verify(
        w.world, variant([HALF_RIGHT], [CALLED_PUT], reward={"preset": "binary"}), final_answer="ok"
    )
    assert (failing.reward, failing.success) == (0.0, False)


def test_weighted_uses_check_weights_and_overrides_by_name(w):
    checks = [("issue_fields", HALF_RIGHT[1], {"weight": 3.0})], [CALLED_PUT]
    verdict = verify(w.world, variant(*checks, reward={"preset": "weighted"}))
    assert verdict.reward == pytest.approx((3 * 0.5 + 1 * 1) / 4)
    overridden = verify(w.world, variant(*checks, reward={"preset": "weighted", "weights": {"called": 0}}))
    assert overridden.reward == pytest.approx(0.5)


def test_a_check_marked_not_required_does_not_decide_success(w):
    optional = ("issue_fields", HALF_RIGHT[1], {"required": False})
    verdict = verify(w.world, variant([optional], [CALLED_PUT]), final_answer="done")
    assert verdict.success and verdict.reward < 1


def test_format_errors_cost_the_penalty_each_down_to_zero(w):
    right = ("issue_fields", {"issue": "OPS-1", "fields": {"priority": "Medium"}})
    one_bad = verify(
        w.world, variant([right], reward={"preset": "binary"}), final_answer="x", format_errors=2
    )
    assert one_bad.reward == pytest.approx(0.8)
    assert one_bad.success  # the world is right; the penalty only lowers the reward
    assert one_bad.breakdown["format_penalty"] == pytest.approx(0.2)
    custom = {"preset": "binary", "format_penalty": 0.4}
    assert verify(w.world, variant([right], reward=custom), final_answer="x", format_errors=3).reward == 0


def test_verify_leaves_setup_calls_out_of_the_trace(w):
    checks = variant([], [("max_calls", {"max": 1}), ("no_collateral", {"allow": []})])
    assert (
        verify(w.world, checks, final_answer="x", after_seq=0).breakdown["components"]["hygiene"]["score"] < 1
    )
    assert verify(w.world, checks, final_answer="x", after_seq=2).reward == 1


def test_a_check_left_with_a_setup_template_fails_with_a_detail(w):
    verdict = verify(w.world, variant([("issue_exists", {"issue": "{{ issue.key }}"})]), final_answer="x")
    assert not verdict.success
    assert "unrendered template" in verdict.checks[0].detail


def test_verify_never_writes(w, django_assert_max_num_queries):
    checks = variant(
        [HALF_RIGHT, ("comment_exists", {"issue": "OPS-1", "contains": "x"})],
        [CALLED_PUT, NO_COLLATERAL, ("no_errors", {})],
    )
    with django_assert_max_num_queries(12) as captured:
        verdict = verify(w.world, checks, final_answer="done")
    assert not any(q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in captured)
    assert verdict.to_dict()["checks"][0]["name"] == "issue_fields"
