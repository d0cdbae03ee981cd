"""The verifier timeline and the re-run: an episode's recorded calls replayed in a fresh world
from its task's seed and setup, verified after every step."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

from experiments import replay
from experiments.environment import discard_worlds, oracle_transcript
from experiments.models import Episode, EpisodeReplay, Experiment, Iteration, Step
from experiments.suites import save_suite
from simulator.seeding import load_seed

SUITE = Path(__file__).parent / "suites" / "jira_oracle.yaml"

pytestmark = pytest.mark.django_db


def recorded_oracle_episode(owner, task_id="create-bug", *, calls=None):
    """An episode whose steps are the oracle's own calls (``calls`` replaces them), with the
    verdict the oracle got, as a rollout would have stored it."""
    suite = save_suite(SUITE.read_text())
    task = suite.tasks.get(task_id=task_id)
    variant = task.variants("train", world=load_seed("acme"))[0]
    transcript = oracle_transcript(variant)
    discard_worlds([transcript.world])
    experiment = Experiment.objects.create(
        name="recorded", suite=suite, model_name="tiny-random", hyperparameters={}, owner=owner
    )
    iteration = Iteration.objects.create(experiment=experiment, index=1, policy_version=0)
    result = transcript.result
    episode = Episode.objects.create(
        experiment=experiment,
        iteration=iteration,
        task=task,
        variant_index=0,
        sample_index=0,
        instruction=transcript.instruction,
        policy_version=0,
        reward=result.reward,
        success=result.success,
        checks=result.details["checks"],
        details={k: v for k, v in result.details.items() if k != "checks"},
        finished=True,
    )
    texts = calls if calls is not None else [text for text, _observation in transcript.turns]
    for index, text in enumerate(texts):
        action = json.loads(text)
        request = {**action, "query": {}} if "method" in action else None
        Step.objects.create(
            episode=episode,
            index=index,
            prompt_tokens=100,
            raw_output=text,
            action=action,
            request=request,
            response={"status": 201, "body": {}} if request else None,
            token_bytes=b"",
            logprob_bytes=b"",
            latency=0.1,
        )
    return episode


def test_replaying_the_oracles_calls_reproduces_its_verdict(make_user):
    episode = recorded_oracle_episode(make_user())
    assert episode.success and episode.reward == 1.0
    data = replay.replay_episode(episode).to_dict()
    assert not data["error"]
    assert replay.reproduces(episode, data)
    first, last = data["rows"][0], data["rows"][-1]
    assert first["status"] == 201  # the POST of the bug
    assert "issue_fields" in " ".join(data["checks"]) or data["checks"]
    assert last["success"] and last["reward"] == 1.0
    assert data["point_of_no_return"] is None


def test_the_timeline_shows_which_checks_hold_after_each_step(make_user):
    episode = recorded_oracle_episode(
        make_user(),
        calls=[
            '{"method": "GET", "path": "/rest/api/3/myself"}',
            json.dumps(
                {
                    "method": "POST",
                    "path": "/rest/api/3/issue",
                    "body": {
                        "fields": {"project": {"key": "WEB"}, "summary": "x", "issuetype": {"name": "Bug"}}
                    },
                }
            ),
            '{"final": "created"}',
        ],
    )
    data = replay.replay_episode(episode).to_dict()
    called = next(name for name in data["checks"] if "called" in name.lower() or "POST" in name)
    assert called not in data["rows"][0]["passed"]  # nothing posted yet after the GET
    assert called in data["rows"][1]["passed"]
    assert [r["reward"] for r in data["rows"]] == sorted(r["reward"] for r in data["rows"])
    assert not data["rows"][-1]["success"]  # the wrong summary and no priority: the fields check fails


def test_the_timeline_fragment_is_computed_once_then_read_from_the_cache(
    client, make_user, django_assert_num_queries
):
    episode = recorded_oracle_episode(make_user())
    client.force_login(make_user("vera", role="viewers"))
    url = reverse("episode-timeline", args=[episode.pk])
    html = client.get(url).content.decode()
    assert "the recorded verdict reproduces" in html
    assert EpisodeReplay.objects.filter(episode=episode).count() == 1
    with django_assert_num_queries(4):  # session, user, episode with its task, the cached replay
        assert "the recorded verdict reproduces" in client.get(url).content.decode()


def test_the_point_of_no_return_is_the_step_a_sticky_check_broke():
    class Check:
        def __init__(self, name, type, required=True):
            self.name, self.type, self.required = name, type, required

    rows = [
        {"index": 0, "passed": ["no errors", "created"]},
        {"index": 1, "passed": ["created"]},
        {"index": 2, "passed": ["created"]},
    ]
    checks = [Check("no errors", "no_errors"), Check("created", "issue_exists")]
    assert replay.point_of_no_return(rows, checks) == 1
    assert replay.point_of_no_return(rows, [Check("no errors", "no_errors", required=False)]) is None


def test_a_rerun_needs_the_review_permission(client, make_user):
    episode = recorded_oracle_episode(make_user())
    client.force_login(make_user("vera", role="viewers"))
    assert client.post(reverse("episode-rerun", args=[episode.pk])).status_code == 403


def test_a_rerun_says_whether_the_verdict_reproduces_and_a_what_if_can_break_it(client, make_user):
    episode = recorded_oracle_episode(make_user())
    client.force_login(make_user("rita", role="reviewers"))
    url = reverse("episode-rerun", args=[episode.pk])
    assert "same verdict as recorded" in client.post(url).content.decode()
    html = client.post(
        url,
        {"edit_index": 0, "edit_method": "GET", "edit_path": "/rest/api/3/myself", "edit_body": ""},
    ).content.decode()
    assert "not the recorded verdict" in html and "With step 0 replaced by" in html
    bad = client.post(url, {"edit_index": 0, "edit_method": "POST", "edit_path": "/x", "edit_body": "{nope"})
    assert bad.status_code == 400 and "not JSON" in bad.content.decode()


def test_the_timeline_marks_the_step_after_which_the_task_could_no_longer_pass(client, make_user):
    episode = recorded_oracle_episode(make_user(), "read-priority")  # its checks forbid any write
    final = episode.steps.order_by("index").last()
    write = final.index
    Step.objects.filter(pk=final.pk).update(index=write + 1)
    Step.objects.create(
        episode=episode,
        index=write,
        prompt_tokens=100,
        raw_output="a write a read task forbids",
        action={"method": "POST", "path": "/rest/api/3/issue", "body": {"fields": {}}},
        request={"method": "POST", "path": "/rest/api/3/issue", "query": {}, "body": {"fields": {}}},
        token_bytes=b"",
        logprob_bytes=b"",
        latency=0.1,
    )
    client.force_login(make_user("vera", role="viewers"))
    html = client.get(reverse("episode-timeline", args=[episode.pk])).content.decode()
    assert f'After step <a href="?step={write}">{write}</a> the task could no longer pass.' in html
    assert "differs from the recorded verdict" in html
