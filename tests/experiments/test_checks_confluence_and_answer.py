"""Page checks and final-answer checks, passing and failing."""

import pytest

from tests.experiments.checking import check
from tests.experiments.worlds import Trace, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    return build_world()


def test_page_exists_by_title_in_a_space_or_by_id(w):
    assert check(w.world, "page_exists", {"space": "ENG", "title": "on-call runbook"}).passed
    assert check(w.world, "page_exists", {"id": w.runbook.ext_id}).passed
    missing = check(w.world, "page_exists", {"space": "ENG", "title": "Postmortem"})
    assert (
        not missing.passed
        and missing.detail == "expected a page titled 'Postmortem' in space ENG, found none"
    )


def test_page_exists_ignores_trashed_pages_and_exists_false_inverts_it(w):
    w.runbook.status = "trashed"
    w.runbook.save()
    assert not check(w.world, "page_exists", {"space": "ENG", "title": "On-call runbook"}).passed
    assert check(w.world, "page_exists", {"space": "ENG", "title": "On-call runbook", "exists": False}).passed


def test_page_exists_with_new_needs_a_create_in_the_change_log(w):
    params = {"space": "ENG", "title": "On-call runbook", "new": True}
    assert not check(w.world, "page_exists", params).passed
    Trace(w.world).call(
        "POST",
        "/wiki/api/v2/pages",
        status=200,
        changes=[("create", "page", str(w.runbook.ext_id), "", None, None)],
    )
    assert check(w.world, "page_exists", params).passed


def test_page_fields_passes_when_title_parent_body_labels_version_match(w):
    fields = {
        "parent": "Engineering Home",
        "body": {"contains": ["page the & on-call", "runbook"]},
        "labels": {"contains": ["ops"]},
        "version": {"min": 2},
        "status": "current",
        "title": "On-call Runbook",
    }
    result = check(w.world, "page_fields", {"id": w.runbook.ext_id, "fields": fields})
    assert result.passed, result.detail


def test_page_fields_gives_partial_credit_and_says_what_is_wrong(w):
    fields = {
        "parent": str(w.home.ext_id),
        "body": {"contains": "escalation"},
        "labels": ["ops"],
        "version": 3,
    }
    result = check(w.world, "page_fields", {"space": "ENG", "title": "On-call runbook", "fields": fields})
    assert result.score == 0.5
    assert "labels should be ['ops'] but is ['ops', 'runbook']" in result.detail
    assert "body should be" in result.detail


def test_page_fields_fails_when_the_page_is_missing(w):
    result = check(w.world, "page_fields", {"space": "ENG", "title": "Nope", "fields": {"version": 1}})
    assert (result.passed, result.score) == (False, 0)


@pytest.mark.parametrize(
    ("params", "answer", "passed"),
    [
        ({"equals": "High"}, "  high. ", True),
        ({"equals": "High"}, '"HIGH"', True),
        ({"equals": "High"}, "Highest", False),
        ({"contains": ["OPS-1", "OPS-2"]}, "The blockers are ops-1 and OPS-2.", True),
        ({"contains_any": ["does not exist", "not found"]}, "Project ZZZ was not found.", True),
        ({"contains_any": ["does not exist", "not found"]}, "Created ZZZ-1.", False),
        ({"excludes": "created"}, "Nothing was created", False),
        ({"regex": r"\b3\s+issues?\b"}, "There are 3 issues.", True),
        ({"regex": r"^\d+$"}, "three", False),
    ],
)
def test_answer_compares_the_final_answer_sensibly(w, params, answer, passed):
    assert check(w.world, "answer", params, final_answer=answer).passed is passed


def test_answer_gives_each_wanted_text_its_share(w):
    result = check(w.world, "answer", {"contains": ["OPS-1", "OPS-2", "OPS-3"]}, final_answer="OPS-1, OPS-3")
    assert result.score == pytest.approx(2 / 3)
    assert "should be containing 'OPS-2'" in result.detail


def test_answer_fails_when_the_episode_gave_none(w):
    result = check(w.world, "answer", {"equals": "High"}, final_answer=None)
    assert not result.passed and "ended without one" in result.detail
