"""The simulator's read-only selectors that the verifiers rely on."""

import pytest

from simulator import selectors
from tests.experiments.worlds import Trace, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    return build_world()


def test_issue_state_flattens_an_issue_into_plain_values(w, django_assert_num_queries):
    with django_assert_num_queries(5):
        state = selectors.issue_state(w.world, "OPS-1")
    assert state["summary"] == "Login fails on Safari"
    assert state["description"] == "Users see a blank page.\nOnly Safari 17."
    assert (state["type"], state["status"], state["status_category"]) == ("Bug", "To Do", "new")
    assert state["assignee"] == {
        "accountId": "acc-ada",
        "email": "ada@acme.test",
        "displayName": "Ada Lovelace",
    }
    assert state["labels"] == ["frontend", "urgent"]
    assert state["components"] == ["API"] and state["fix_versions"] == ["1.0"]
    assert state["sprints"] == [{"id": 1, "name": "OPS Sprint 1", "state": "active"}]


def test_issue_state_finds_an_issue_by_id_or_lowercase_key_and_none_when_missing(w):
    assert selectors.issue_state(w.world, str(w.ops2.ext_id))["key"] == "OPS-2"
    assert selectors.issue_state(w.world, "ops-2")["story_points"] == 3.0
    assert selectors.issue_state(w.world, "OPS-99") is None


def test_issue_state_does_not_see_another_worlds_issues(w):
    other = build_world()
    other.ops1.summary = "Changed elsewhere"
    other.ops1.save()
    assert selectors.issue_state(w.world, "OPS-1")["summary"] == "Login fails on Safari"


def test_find_issue_matches_users_by_email_or_name_and_returns_the_newest(w):
    assert selectors.find_issue(w.world, project="OPS", assignee="bob@acme.test")["key"] == "OPS-2"
    assert selectors.find_issue(w.world, assignee="ada lovelace")["key"] == "OPS-1"
    w.make_issue(w.ops, "Login fails on Safari")
    assert selectors.find_issue(w.world, summary="login fails on safari")["key"] == "OPS-4"
    assert selectors.find_issues(w.world, label="urgent")[0]["key"] == "OPS-1"
    assert selectors.find_issue(w.world, project="OPS", assignee=None)["key"] == "OPS-4"


def test_comments_flatten_adf_and_list_mentions(w):
    (comment,) = selectors.comments(w.world, "OPS-1")
    assert comment["text"] == "Reproduced, @Ada Lovelace please look."
    assert comment["mentions"] == ["acc-ada"]
    assert comment["author"]["accountId"] == "acc-bob"


def test_links_read_from_either_end_in_the_outward_direction(w):
    expected = [
        {
            "id": str(w.link.ext_id),
            "type": "Blocks",
            "inward": "is blocked by",
            "outward": "blocks",
            "from": "OPS-1",
            "to": "OPS-2",
        }
    ]
    assert selectors.links(w.world, "OPS-1") == expected
    assert selectors.links(w.world, "OPS-2") == expected


def test_page_state_by_title_or_id_gives_parent_body_text_labels_version(w):
    page = selectors.page_state(w.world, space_key="eng", title="ON-CALL RUNBOOK")
    assert page["parent_title"] == "Engineering Home" and page["parent_id"] == str(w.home.ext_id)
    assert page["text"] == "Runbook Page the & on-call engineer."
    assert page["labels"] == ["ops", "runbook"] and page["version"] == 3
    assert selectors.page_state(w.world, id=w.runbook.ext_id)["title"] == "On-call runbook"
    assert selectors.page_state(w.world, space_key="ENG", title="Nope") is None


def test_calls_and_changes_come_in_order_and_can_skip_the_setup(w, django_assert_num_queries):
    trace = Trace(w.world, w.ada)
    trace.call(
        "POST",
        "/rest/api/3/issue",
        {"fields": {}},
        201,
        changes=[("create", "issue", "OPS-5", "", None, None)],
    )
    trace.call("GET", "/rest/api/3/issue/OPS-5")
    trace.call(
        "PUT",
        "/rest/api/3/issue/OPS-5",
        {"fields": {"summary": "x"}},
        204,
        changes=[("update", "issue", "OPS-5", "summary", "a", "x")],
    )
    with django_assert_num_queries(1):
        assert [c["seq"] for c in selectors.calls(w.world)] == [1, 2, 3]
    assert [c["method"] for c in selectors.calls(w.world, after_seq=1)] == ["GET", "PUT"]
    with django_assert_num_queries(1):
        assert [c["action"] for c in selectors.changes(w.world)] == ["create", "update"]
    assert selectors.changes(w.world, after_seq=1) == [
        {
            "seq": 3,
            "action": "update",
            "object_type": "issue",
            "object_ref": "OPS-5",
            "field": "summary",
            "before": "a",
            "after": "x",
        }
    ]


def test_entities_list_a_worlds_users_and_issues_in_a_stable_order(w):
    assert [u["accountId"] for u in selectors.entities(w.world, "users")] == ["acc-ada", "acc-bob", "acc-cy"]
    assert [i["key"] for i in selectors.entities(w.world, "issues")] == ["OPS-1", "OPS-2", "OPS-3", "WEB-1"]
    with pytest.raises(ValueError, match="unknown entity kind"):
        selectors.entities(w.world, "boards")


def test_template_world_is_the_loaded_seed(w):
    template = build_world(seed="acme", template=True)
    assert selectors.template_world("acme") == template.world
    assert selectors.template_world("nope") is None
