"""Jira state checks, each passing and failing on worlds built with the ORM."""

import pytest

from tests.experiments.checking import check
from tests.experiments.worlds import Trace, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    return build_world()


def test_issue_exists_passes_for_an_existing_key_and_fails_for_a_missing_one(w):
    assert check(w.world, "issue_exists", {"issue": "OPS-1"}).passed
    result = check(w.world, "issue_exists", {"issue": "OPS-9"})
    assert not result.passed and result.score == 0
    assert result.detail == "expected issue OPS-9, found none"


def test_issue_exists_false_fails_while_the_issue_is_still_there(w):
    assert not check(w.world, "issue_exists", {"issue": "OPS-2", "exists": False}).passed
    w.ops2.delete()
    assert check(w.world, "issue_exists", {"issue": "OPS-2", "exists": False}).passed


def test_issue_exists_with_new_only_counts_issues_the_episode_created(w):
    params = {"where": {"project": "OPS", "summary": "Rotate database keys"}, "new": True}
    assert not check(w.world, "issue_exists", params).passed  # a seed issue, not a new one
    w.make_issue(w.ops, "Rotate database keys")
    Trace(w.world).call(
        "POST", "/rest/api/3/issue", status=201, changes=[("create", "issue", "OPS-4", "", None, None)]
    )
    result = check(w.world, "issue_exists", params)
    assert result.passed and "OPS-4" in result.detail


def test_issue_fields_passes_when_every_field_matches(w):
    fields = {
        "summary": "login fails on  safari",
        "description": {"contains": "blank page"},
        "type": "Bug",
        "status": "to do",
        "status_category": "To Do",
        "priority": {"name": "High"},
        "assignee": "ada@acme.test",
        "reporter": "Ada Lovelace",
        "labels": ["urgent", "frontend"],
        "components": ["api"],
        "fix_versions": {"contains": ["1.0"]},
        "sprint": "OPS Sprint 1",
        "parent": None,
        "resolution": None,
        "due_date": None,
        "story_points": None,
        "project": "OPS",
    }
    result = check(w.world, "issue_fields", {"issue": "OPS-1", "fields": fields})
    assert result.passed, result.detail
    assert result.score == 1


def test_issue_fields_gives_each_right_field_an_equal_share(w):
    fields = {
        "status": "Done",
        "assignee": "acc-ada",
        "priority": "High",
        "labels": {"contains": ["backend"]},
    }
    result = check(w.world, "issue_fields", {"issue": "OPS-1", "fields": fields})
    assert not result.passed
    assert result.score == 0.5
    assert "OPS-1 has 2 of 4 fields right" in result.detail
    assert "status should be 'Done' but is 'To Do'" in result.detail


@pytest.mark.parametrize(
    ("field", "right", "wrong"),
    [
        ("labels", ["frontend", "urgent"], ["frontend"]),  # a list is the exact set
        ("labels", {"contains": ["urgent"]}, {"contains": ["backend"]}),
        ("labels", {"excludes": ["backend"]}, {"excludes": ["urgent"]}),
        ("assignee", {"accountId": "acc-ada"}, {"accountId": "acc-bob"}),
        ("assignee", "Ada Lovelace", None),
        ("parent", None, "OPS-3"),
        ("sprint", 1, "OPS Sprint 2"),
        ("resolution", None, "Fixed"),
        ("components", ["API"], ["API", "Database"]),
        ("summary", {"contains": "safari"}, {"contains": "chrome"}),
        ("description", {"excludes": "chrome"}, "Users see a blank page."),
    ],
)
def test_issue_fields_compares_each_kind_of_field(w, field, right, wrong):
    assert check(w.world, "issue_fields", {"issue": "OPS-1", "fields": {field: right}}).passed
    assert not check(w.world, "issue_fields", {"issue": "OPS-1", "fields": {field: wrong}}).passed


def test_issue_fields_reads_dates_points_and_parents(w):
    w.ops2.parent = w.ops3
    w.ops2.save()
    fields = {"due_date": "2026-02-01", "story_points": 3, "parent": "OPS-3"}
    assert check(w.world, "issue_fields", {"issue": "OPS-2", "fields": fields}).passed
    assert not check(w.world, "issue_fields", {"issue": "OPS-2", "fields": {"story_points": 5}}).passed


def test_issue_fields_with_where_scores_the_best_matching_issue(w):
    w.make_issue(w.ops, "Deploy v2", priority=w.high)
    w.make_issue(w.ops, "Deploy v2", priority=w.medium, assignee=w.bob)
    result = check(
        w.world,
        "issue_fields",
        {"where": {"summary": "Deploy v2"}, "fields": {"priority": "Medium", "assignee": "acc-bob"}},
    )
    assert result.passed and result.detail.startswith("OPS-5")


def test_issue_fields_fails_with_no_score_when_no_issue_matches(w):
    result = check(w.world, "issue_fields", {"where": {"summary": "Nothing"}, "fields": {"status": "Done"}})
    assert (result.passed, result.score) == (False, 0)
    assert "found no such issue" in result.detail


def test_issue_count_counts_what_a_jql_query_finds(w):
    assert check(w.world, "issue_count", {"jql": "project = OPS", "equals": 3}).passed
    result = check(w.world, "issue_count", {"jql": "project = OPS AND labels = urgent", "equals": 2})
    assert not result.passed and "it finds 1 (OPS-1)" in result.detail
    assert check(
        w.world, "issue_count", {"jql": "assignee = currentUser()", "as": "acc-bob", "min": 1, "max": 1}
    ).passed


def test_issue_count_fails_with_the_jql_error_for_a_bad_query(w):
    result = check(w.world, "issue_count", {"jql": "project = = OPS", "equals": 0})
    assert not result.passed and "could not run" in result.detail


def test_comment_exists_finds_text_in_adf_and_mentions(w):
    assert check(
        w.world,
        "comment_exists",
        {
            "issue": "OPS-1",
            "contains": ["reproduced", "PLEASE look"],
            "mentions": "acc-ada",
            "author": "acc-bob",
        },
    ).passed


def test_comment_exists_gives_partial_credit_to_the_closest_comment(w):
    result = check(
        w.world,
        "comment_exists",
        {"issue": "OPS-1", "contains": ["reproduced", "fixed"], "mentions": ["acc-bob"]},
    )
    assert not result.passed
    assert result.score == pytest.approx(1 / 3)
    assert "lacks: contains 'fixed'; mentions 'acc-bob'" in result.detail


def test_comment_exists_with_new_ignores_comments_from_before_the_episode(w):
    result = check(w.world, "comment_exists", {"issue": "OPS-1", "contains": "reproduced", "new": True})
    assert not result.passed and result.detail == "expected a new comment on OPS-1, found none"
    Trace(w.world).call(
        "POST",
        "/rest/api/3/issue/OPS-1/comment",
        status=201,
        changes=[("create", "comment", str(w.comment.ext_id), "", None, None)],
    )
    assert check(w.world, "comment_exists", {"issue": "OPS-1", "contains": "reproduced", "new": True}).passed


def test_comment_exists_false_fails_when_such_a_comment_is_there(w):
    assert not check(
        w.world, "comment_exists", {"issue": "OPS-1", "contains": "reproduced", "exists": False}
    ).passed
    assert check(
        w.world, "comment_exists", {"issue": "OPS-2", "contains": "reproduced", "exists": False}
    ).passed


def test_link_exists_reads_the_type_in_its_direction(w):
    assert check(w.world, "link_exists", {"type": "Blocks", "from": "OPS-1", "to": "OPS-2"}).passed
    assert check(w.world, "link_exists", {"type": "blocks", "from": "ops-1", "to": "OPS-2"}).passed
    assert check(w.world, "link_exists", {"type": "is blocked by", "from": "OPS-2", "to": "OPS-1"}).passed
    wrong_way = check(w.world, "link_exists", {"type": "Blocks", "from": "OPS-2", "to": "OPS-1"})
    assert not wrong_way.passed and "found OPS-1 blocks OPS-2" in wrong_way.detail
    assert check(
        w.world, "link_exists", {"type": "Blocks", "from": "OPS-2", "to": "OPS-1", "directed": False}
    ).passed


def test_link_exists_fails_for_another_type_and_exists_false_inverts_it(w):
    assert not check(w.world, "link_exists", {"type": "Relates", "from": "OPS-1", "to": "OPS-2"}).passed
    assert check(
        w.world, "link_exists", {"type": "Relates", "from": "OPS-1", "to": "OPS-2", "exists": False}
    ).passed
    assert not check(
        w.world, "link_exists", {"type": "Blocks", "from": "OPS-1", "to": "OPS-2", "exists": False}
    ).passed
