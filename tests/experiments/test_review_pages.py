"""Team review: verdicts and labels, threaded comments with markdown and mentions, queues with
round-robin assignment and keyboard-first completion, the counts, the export and who may do what."""

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Comment, Episode, QueueItem, Review, ReviewQueue, Step, TaskSuite

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(make_user):
    load_builtin_suites()
    return record_history(
        owner=make_user("olivia", role="operators"),
        suite=TaskSuite.objects.get(name="atlassian-core"),
        iterations=4,
        tasks_per_iteration=3,
        group_size=4,
        steps_per_episode=3,
        eval_every=0,
        seed=5,
    )


@pytest.fixture
def rita(make_user):
    return make_user("rita", role="reviewers")


@pytest.fixture
def reviewer(client, rita):
    client.force_login(rita)
    return client


@pytest.fixture
def failed(history):
    return Episode.objects.filter(success=False).order_by("id").first()


def test_a_reviewer_sets_verdict_label_status_and_assignee(reviewer, failed, make_user):
    make_user("sam", role="reviewers")
    response = reviewer.post(
        reverse("episode-review", args=[failed.pk]),
        {"verdict": "agent_failure", "label": "wrong_endpoint", "status": "triaged", "assignee": "sam"},
    )
    assert response.status_code == 302
    review = Review.objects.get(episode=failed)
    assert (review.verdict, review.label, review.status) == ("agent_failure", "wrong_endpoint", "triaged")
    assert review.assignee.username == "sam" and review.reviewed_by.username == "rita"
    assert review.suggested_label  # filled in from the failed checks and the last API error
    html = reviewer.get(reverse("episode", args=[failed.pk])).content.decode()
    assert "wrong endpoint" in html and "assigned to sam" in html


def test_a_verdict_alone_triages_an_open_review(reviewer, failed):
    reviewer.post(reverse("episode-review", args=[failed.pk]), {"verdict": "false_fail"})
    assert Review.objects.get(episode=failed).status == Review.TRIAGED


def test_viewers_cannot_review_comment_rerun_or_make_queues(client, make_user, failed):
    client.force_login(make_user("vera", role="viewers"))
    assert client.post(reverse("episode-review", args=[failed.pk]), {"verdict": "correct"}).status_code == 403
    assert client.post(reverse("episode-comment", args=[failed.pk]), {"body": "hi"}).status_code == 403
    assert client.post(reverse("review-queue-new"), {"name": "q"}).status_code == 403
    html = client.get(reverse("episode", args=[failed.pk])).content.decode()
    assert 'id="review-form"' not in html and "comment-form" not in html and "rerun-form" not in html
    assert not Review.objects.exists() and not Comment.objects.exists()


def test_reviewers_see_review_controls_but_no_launch_or_cancel_controls(reviewer, failed):
    html = reviewer.get(reverse("episode", args=[failed.pk])).content.decode()
    assert 'id="review-form"' in html and "rerun-form" in html
    for page in (html, reviewer.get(reverse("review")).content.decode()):
        assert not re.search(r"(?i)<(button|form)[^>]*(launch|cancel|pause)", page)


def test_changes_need_post(reviewer, failed):
    assert reviewer.get(reverse("episode-review", args=[failed.pk])).status_code == 405
    assert reviewer.get(reverse("episode-rerun", args=[failed.pk])).status_code == 405


def test_changes_need_the_csrf_token(client, rita, failed):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(rita)
    assert strict.post(reverse("episode-review", args=[failed.pk]), {"verdict": "correct"}).status_code == 403


def test_comments_render_markdown_strip_html_and_resolve_mentions(reviewer, client, failed, make_user):
    sam = make_user("sam", role="reviewers")
    body = "**Wrong** path at step 1, @sam see <script>alert('c')</script> <img src=x onerror=alert(1)>"
    reviewer.post(
        reverse("episode-comment", args=[failed.pk]), {"body": body, "anchor": "on", "step_index": "1"}
    )
    comment = Comment.objects.get(episode=failed)
    assert comment.step_index == 1 and list(comment.mentions.all()) == [sam]
    html = reviewer.get(reverse("episode", args=[failed.pk])).content.decode()
    assert "<strong>Wrong</strong>" in html
    assert "<script>alert('c')</script>" not in html and "onerror" not in html and "<img" not in html
    assert "step 1</a>" in html
    client.force_login(sam)
    mentions = client.get(reverse("review")).content.decode()
    assert f"episode {failed.pk}, step 1" in mentions and "&lt;script&gt;" in mentions


def test_replies_thread_under_their_comment(reviewer, failed):
    url = reverse("episode-comment", args=[failed.pk])
    reviewer.post(url, {"body": "first"})
    parent = Comment.objects.get()
    reviewer.post(url, {"body": "an answer", "parent": parent.pk})
    reviewer.post(url, {"body": "second"})
    reply = Comment.objects.get(body="an answer")
    assert reply.parent == parent and reply.step_index is None
    html = reviewer.get(reverse("episode", args=[failed.pk])).content.decode()
    assert html.index("first") < html.index("an answer") < html.index("second")
    assert 'class="comment depth-1"' in html


def test_an_empty_comment_is_refused(reviewer, failed):
    assert reviewer.post(reverse("episode-comment", args=[failed.pk]), {"body": "  "}).status_code == 400


def _queue(reviewer, filters, size, members=()):
    data = {f"f_{k}": v for k, v in filters.items()} | {"name": "failures", "size": size}
    if members:
        data["members"] = list(members)
    response = reviewer.post(reverse("review-queue-new"), data)
    assert response.status_code == 302
    return ReviewQueue.objects.latest("id")


def test_a_queue_samples_across_failure_signatures_and_assigns_round_robin(reviewer, history, make_user):
    make_user("sam", role="reviewers")
    queue = _queue(reviewer, {"success": "0", "experiment": str(history.pk)}, 8, ["rita", "sam"])
    items = list(queue.items.select_related("episode", "assignee").order_by("position"))
    assert len(items) == 8 and all(not i.episode.success for i in items)
    assert [i.assignee.username for i in items] == ["rita", "sam"] * 4
    signatures = {i.signature for i in items}
    available = {
        f"{e.failure_category}: {', '.join(sorted(c['name'] for c in e.checks if not c['passed']))}"
        for e in Episode.objects.filter(success=False)
    }
    assert len(signatures) == min(8, len(available))  # one of each kind before a second of any


def test_working_through_a_queue_with_complete_and_next(reviewer, history, rita):
    queue = _queue(reviewer, {"success": "0"}, 3)
    first, second = queue.items.order_by("position")[:2]
    response = reviewer.get(reverse("review-queue-next", args=[queue.pk]))
    assert response.url == reverse("episode", args=[first.episode_id]) + f"?queue={queue.pk}"
    html = reviewer.get(response.url).content.decode()
    assert 'id="complete-next"' in html and f'value="{queue.pk}"' in html
    response = reviewer.post(
        reverse("episode-review", args=[first.episode_id]),
        {"verdict": "agent_failure", "label": "invalid_field", "queue": queue.pk, "complete": "1"},
    )
    assert response.url == reverse("episode", args=[second.episode_id]) + f"?queue={queue.pk}"
    first.refresh_from_db()
    assert first.done_at is not None
    page = reviewer.get(reverse("review-queue", args=[queue.pk])).content.decode()
    assert "1 / 3" in page


def test_the_queue_page_runs_a_fixed_number_of_queries(reviewer, history, django_assert_num_queries):
    queue = _queue(reviewer, {"success": "0"}, 30)
    Review.objects.create(episode=queue.items.first().episode, verdict="correct")
    with django_assert_num_queries(8):  # session, user, queue, items, members, progress, 2 permissions
        reviewer.get(reverse("review-queue", args=[queue.pk]))


def test_the_review_page_counts_by_verdict_and_label_per_experiment(
    reviewer, history, django_assert_num_queries
):
    episodes = list(Episode.objects.filter(success=False)[:3])
    for episode, label in zip(episodes, ["wrong_order", "wrong_order", "other"], strict=True):
        reviewer.post(
            reverse("episode-review", args=[episode.pk]), {"verdict": "agent_failure", "label": label}
        )
    # session, user, queues with progress, counts, open reviews, mentions, permissions (user, groups)
    with django_assert_num_queries(8):
        response = reviewer.get(reverse("review"))
    html = response.content.decode()
    assert 'id="review-chart"' in html and "vendor/plotly.min.js" in html
    chart = json.loads(re.search(r'id="review-chart" type="application/json">(.*?)</script>', html).group(1))
    bars = {t["name"]: t["y"] for t in chart["label"]}
    assert bars == {"wrong order": [2], "other": [1]}


def test_the_episode_browser_filters_by_label_and_review_status(reviewer, history, failed):
    reviewer.post(reverse("episode-review", args=[failed.pk]), {"verdict": "false_fail", "label": "other"})
    html = reviewer.get(reverse("episodes"), {"label": "other", "review_status": "triaged"}).content.decode()
    assert set(re.findall(r'href="/episodes/(\d+)/"', html)) == {str(failed.pk)}


def test_the_export_writes_reviewed_episodes_as_jsonl_and_csv(reviewer, history, failed):
    Step.objects.filter(episode=failed, index=0).update(raw_output="<script>x</script> output")
    reviewer.post(reverse("episode-review", args=[failed.pk]), {"verdict": "agent_failure", "label": "other"})
    reviewer.post(reverse("episode-comment", args=[failed.pk]), {"body": "see step 0"})
    response = reviewer.get(reverse("episodes-export", args=["jsonl"]), {"success": "0"})
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["episode"] == failed.pk and record["review"]["label"] == "other"
    assert record["messages"][0] == {"role": "user", "content": failed.instruction}
    assert record["messages"][1] == {"role": "assistant", "content": "<script>x</script> output"}
    assert record["checks"] == failed.checks and record["review"]["comments"][0]["body"] == "see step 0"
    response = reviewer.get(reverse("episodes-export", args=["csv"]), {"all": "1", "success": "0"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "episode" and len(rows) - 1 == Episode.objects.filter(success=False).count()
    assert reviewer.get(reverse("episodes-export", args=["xml"])).status_code == 404


def test_a_queue_item_of_a_deleted_review_state_still_renders(reviewer, history):
    queue = _queue(reviewer, {}, 2)
    assert QueueItem.objects.filter(queue=queue).count() == 2
    assert reviewer.get(reverse("review-queue", args=[queue.pk])).status_code == 200


def test_the_command_flags_suspicious_passes_and_exports(history, tmp_path):
    from django.core.management import call_command

    passed = Episode.objects.filter(success=True).order_by("id").first()
    Step.objects.filter(episode=passed).update(parse_error="no JSON object in the output", request=None)
    call_command("review", "flag", "--experiment", str(history.pk))
    flags = Review.objects.get(episode=passed).flags
    assert "format_errors" in {f["rule"] for f in flags}
    out = tmp_path / "reviewed.jsonl"
    call_command("review", "export", "--out", str(out), "--filter", "success=1")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert passed.pk in {r["episode"] for r in records}
    assert all(r["success"] for r in records)
