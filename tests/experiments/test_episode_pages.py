"""The episodes browser, the replay page and its fragments, the comparison and the export, on
recorded histories (experiments.history.record_history)."""

import re

import pytest
from django.urls import reverse

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Episode, Review, Step, TaskSuite

pytestmark = pytest.mark.django_db


@pytest.fixture
def suite():
    load_builtin_suites()
    return TaskSuite.objects.get(name="atlassian-core")


@pytest.fixture
def history(suite, make_user):
    return record_history(
        owner=make_user("olivia", role="operators"),
        suite=suite,
        iterations=4,
        tasks_per_iteration=3,
        group_size=4,
        steps_per_episode=3,
        eval_every=0,
        seed=3,
    )


@pytest.fixture
def reviewer(client, make_user):
    client.force_login(make_user("rita", role="reviewers"))
    return client


def test_the_browser_lists_episodes_newest_first_with_links_to_replay(viewer, history):
    html = viewer.get(reverse("episodes")).content.decode()
    newest = Episode.objects.order_by("-id").first()
    assert reverse("episode", args=[newest.pk]) in html
    assert html.index(f">{newest.pk}<") < html.index(f">{newest.pk - 1}<")


def _shown(html):
    return {int(pk) for pk in re.findall(r'href="/episodes/(\d+)/"', html)}


def test_the_browser_filters_by_outcome_task_iteration_and_reward(viewer, history):
    failed = Episode.objects.filter(success=False, iteration__index=2, reward__lte=0.6)
    task = failed.first().task
    params = {
        "experiment": history.pk,
        "iteration": 2,
        "task": task.pk,
        "success": "0",
        "max_reward": "0.6",
        "min_reward": "0",
    }
    html = viewer.get(reverse("episodes"), params).content.decode()
    expected = set(failed.filter(task=task).values_list("pk", flat=True))
    assert _shown(html) == expected and expected


def test_the_browser_filters_by_first_iteration_and_suite(viewer, history):
    html = viewer.get(reverse("episodes"), {"min_iteration": 3, "suite": "atlassian-core"}).content.decode()
    assert _shown(html) == set(Episode.objects.filter(iteration__index__gte=3).values_list("pk", flat=True))
    assert not _shown(viewer.get(reverse("episodes"), {"suite": "no-such-suite"}).content.decode())


def test_the_browser_pages_by_keyset_in_reward_order(viewer, history, monkeypatch):
    monkeypatch.setattr("experiments.replay.PAGE_SIZE", 7)
    from experiments import replay

    seen, cursor = [], ""
    while True:
        rows, cursor = replay.browser_page({"sort": "-reward"}, cursor, size=7)
        seen += [(e.reward, e.pk) for e in rows]
        if not cursor:
            break
    assert seen == sorted(seen, key=lambda r: (-r[0], -r[1]))
    assert len(seen) == Episode.objects.count() == len(set(seen))
    for sort in ("id", "-id", "reward"):  # within one experiment, the order leads with it
        seen, cursor = [], ""
        while True:
            rows, cursor = replay.browser_page({"experiment": str(history.pk), "sort": sort}, cursor, size=7)
            seen += [(e.reward if "reward" in sort else 0, e.pk) for e in rows]
            if not cursor:
                break
        assert seen == sorted(seen, reverse=sort.startswith("-")) and len(seen) == Episode.objects.count()
    html = viewer.get(reverse("episodes"), {"sort": "reward"}).content.decode()
    assert "after=" in html and "OFFSET" not in html


def test_the_browser_searches_outputs_and_calls(viewer, history):
    step = Step.objects.filter(request__isnull=False).first()
    Step.objects.filter(pk=step.pk).update(raw_output="a needle-in-the-haystack output")
    html = viewer.get(reverse("episodes"), {"q": "needle-in-the"}).content.decode()
    assert _shown(html) == {step.episode_id}


def test_the_browser_runs_a_fixed_number_of_queries(viewer, history, django_assert_num_queries):
    Review.objects.create(episode=Episode.objects.first(), verdict=Review.AGENT_FAILURE, label="other")
    # session, user, episodes with their relations, experiments, tasks, permissions (user, groups)
    with django_assert_num_queries(7):
        viewer.get(reverse("episodes"), {"success": "0", "sort": "-reward"})
    with django_assert_num_queries(7):
        viewer.get(reverse("episodes"), {"experiment": history.pk, "label": "other", "q": "issue"})


def test_the_replay_page_shows_the_steps_and_the_first_step(viewer, history, django_assert_num_queries):
    episode = Episode.objects.filter(success=False).order_by("id").first()
    # session, user, episode with its relations, step list, current step, the observation before
    # it, the best of its group, comments, permissions (user, groups)
    with django_assert_num_queries(10):
        response = viewer.get(reverse("episode", args=[episode.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("episode-step", args=[episode.pk, 1]) in html
    assert reverse("episode-timeline", args=[episode.pk]) in html
    for check in episode.checks:
        assert check["name"] in html
    group = {"iteration": episode.iteration, "task": episode.task, "variant_index": episode.variant_index}
    best = Episode.objects.filter(**group).exclude(pk=episode.pk).order_by("-reward", "id").first()
    assert f"{reverse('episode-compare')}?a={episode.pk}&amp;b={best.pk}" in html


def test_the_replay_page_opens_an_episode_of_hundreds_of_steps_in_fixed_queries(
    viewer, history, django_assert_num_queries
):
    episode = Episode.objects.order_by("id").first()
    template = Step.objects.filter(episode=episode).first()
    Step.objects.bulk_create(
        [
            Step(
                episode=episode,
                index=n,
                prompt_tokens=10,
                raw_output=f"output {n}",
                action=template.action,
                request=template.request,
                response=template.response,
                world_changes=template.world_changes,
                token_bytes=b"",
                logprob_bytes=b"",
                latency=0.1,
            )
            for n in range(10, 400)
        ]
    )
    with django_assert_num_queries(10):
        html = viewer.get(reverse("episode", args=[episode.pk]), {"step": 200}).content.decode()
    index = list(Step.objects.filter(episode=episode).order_by("index").values_list("index", flat=True))[200]
    assert f"<h2>Step {index}</h2>" in html
    assert html.count('class="step-link') == Step.objects.filter(episode=episode).count()


def test_a_reviewer_in_a_queue_gets_the_same_page_in_two_more_queries(
    client, make_user, history, django_assert_num_queries
):
    from experiments.review import build_queue

    rita = make_user("rita", role="reviewers")
    client.force_login(rita)
    queue = build_queue(name="q", filters={"success": "0"}, size=3, members=[rita], created_by=rita)
    episode = queue.items.first().episode
    with django_assert_num_queries(12):  # and the queue item, the reviewers to assign to
        html = client.get(reverse("episode", args=[episode.pk]), {"queue": queue.pk}).content.decode()
    assert 'id="complete-next"' in html


def test_a_step_fragment_shows_the_call_response_and_world_changes(viewer, history):
    step = Step.objects.exclude(world_changes=[]).select_related("episode").first()
    html = viewer.get(reverse("episode-step", args=[step.episode_id, step.index])).content.decode()
    assert step.request["method"] in html and step.request["path"] in html
    assert str(step.response["status"]) in html
    change = step.world_changes[0]
    assert change["field"] in html and "world-diff" in html
    previous = Step.objects.get(episode=step.episode, index=step.index - 1) if step.index else None
    assert (previous.observation if previous else step.episode.instruction) in html
    prompt = viewer.get(reverse("episode-step", args=[step.episode_id, step.index]), {"prompt": 1})
    assert step.episode.instruction[:30] in prompt.content.decode()


def test_model_output_api_bodies_and_world_values_are_escaped(viewer, history):
    step = Step.objects.filter(request__isnull=False).first()
    evil = "<script>alert('x')</script>"
    Step.objects.filter(pk=step.pk).update(
        raw_output=evil,
        response={"status": 400, "body": {"errorMessages": [evil]}},
        world_changes=[
            {"action": "update", "object_type": "issue", "object_ref": "OPS-1", "field": "summary"}
            | {"before": evil, "after": evil}
        ],
    )
    for url in (
        reverse("episode", args=[step.episode_id]) + f"?step={step.index}",
        reverse("episode-step", args=[step.episode_id, step.index]),
    ):
        html = viewer.get(url).content.decode()
        assert evil not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_a_missing_episode_or_step_is_404(viewer, history):
    assert viewer.get(reverse("episode", args=[999999])).status_code == 404
    episode = Episode.objects.first()
    assert viewer.get(reverse("episode-step", args=[episode.pk, 999])).status_code == 404


def test_pages_need_a_login(client, history):
    episode = Episode.objects.first()
    for url in (
        reverse("episodes"),
        reverse("episode", args=[episode.pk]),
        reverse("episode-step", args=[episode.pk, 0]),
        reverse("episode-timeline", args=[episode.pk]),
        reverse("episodes-export", args=["jsonl"]),
        reverse("review"),
    ):
        assert client.get(url).status_code == 302


def test_the_comparison_aligns_two_episodes_of_one_task_and_diffs_their_worlds(viewer, history):
    task = Episode.objects.values_list("task", flat=True).first()
    a, b = Episode.objects.filter(task=task).order_by("id")[:2]
    Step.objects.filter(episode=b, index=1).update(
        request={"method": "DELETE", "path": "/rest/api/3/issue/OPS-9", "query": {}, "body": None},
        world_changes=[
            {"action": "delete", "object_type": "issue", "object_ref": "OPS-9", "field": ""}
            | {"before": "OPS-9", "after": None}
        ],
    )
    html = viewer.get(reverse("episode-compare"), {"a": a.pk, "b": b.pk}).content.decode()
    assert "divergence" in html and "/rest/api/3/issue/OPS-9" in html
    assert "OPS-9" in html.split("Final worlds", 1)[1]


def test_the_comparison_refuses_episodes_of_two_tasks(viewer, history):
    a = Episode.objects.first()
    b = Episode.objects.exclude(task=a.task).first()
    assert viewer.get(reverse("episode-compare"), {"a": a.pk, "b": b.pk}).status_code == 400


def test_alignment_pairs_equal_calls_and_marks_the_divergence():
    from experiments.replay import align

    def s(i, method, path):
        return {"index": i, "method": method, "path": path, "final": None, "status": "200", "parse_error": ""}

    a = [s(0, "GET", "/a"), s(1, "GET", "/b"), s(2, "POST", "/c")]
    b = [s(0, "GET", "/a"), s(1, "PUT", "/x"), s(2, "POST", "/c")]
    rows, divergence = align(a, b)
    assert divergence == 1
    assert [r["same"] for r in rows] == [True, False, True]
    assert rows[2]["a"]["index"] == rows[2]["b"]["index"] == 2
