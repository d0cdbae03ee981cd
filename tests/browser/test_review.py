"""A reviewer in headless Chromium: opens a failed episode, steps through it with the keyboard,
sees a world diff, compares it with a successful one, labels and comments it, finds it in a
queue and exports it."""

import json
import re
from pathlib import Path

import pytest

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Comment, Episode, Review, Step, TaskSuite

pytestmark = pytest.mark.browser


@pytest.fixture
def history(browser_user):
    load_builtin_suites()
    return record_history(
        owner=browser_user,
        suite=TaskSuite.objects.get(name="atlassian-core"),
        iterations=3,
        tasks_per_iteration=2,
        group_size=4,
        steps_per_episode=4,
        eval_every=0,
        seed=11,
    )


def _failed_with_changes():
    """A failed episode of at least three steps whose step 2 changed the world, and an episode of
    the same task that passed."""
    for episode in Episode.objects.filter(success=False, turns__gte=3).order_by("id"):
        passed = Episode.objects.filter(task=episode.task, success=True).first()
        if passed:
            change = {"action": "update", "object_type": "issue", "object_ref": "OPS-7", "field": "priority"}
            Step.objects.filter(episode=episode, index=2).update(
                world_changes=[change | {"before": "Low", "after": "Highest"}]
            )
            return episode, passed, Step.objects.get(episode=episode, index=2)
    raise AssertionError("the recorded history has no failed episode with a passed sibling")


def test_a_reviewer_works_through_a_failed_episode(page, live_server, history):
    episode, passed, changed = _failed_with_changes()
    page.goto(f"{live_server.url}/episodes/?success=0&experiment={history.pk}")
    page.click(f'a[href="/episodes/{episode.pk}/"] >> nth=0')
    page.wait_for_url(re.compile(rf"/episodes/{episode.pk}/"))
    assert page.locator("#step-detail h2").inner_text() == "Step 0"

    # Step through with the keyboard: j / → forward, k / ← back.
    page.keyboard.press("j")
    page.wait_for_selector("#step-detail h2:text-is('Step 1')")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("k")
    page.wait_for_selector("#step-detail h2:text-is('Step 1')")
    assert "step=1" in page.url
    for _ in range(changed.index - 1):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"#step-detail h2:text-is('Step {changed.index}')")
    diff = page.locator("#step-detail table.world-diff")
    assert diff.is_visible()
    assert changed.world_changes[0]["field"] in diff.inner_text()

    # The verifier timeline arrives by itself and marks the step shown.
    page.wait_for_selector("#timeline-table")
    assert page.locator(f"#timeline-table tr.current[data-index='{changed.index}']").count() == 1

    # Compare with a successful episode of the same task.
    page.fill(".compare-form input[name=b]", str(passed.pk))
    page.click(".compare-form button")
    page.wait_for_url(re.compile(r"/episodes/compare/"))
    assert page.locator("table.aligned tbody tr").count() >= 1
    assert "Final worlds" in page.content()
    page.go_back()
    page.wait_for_selector("#review-form")

    # Label it with the keyboard and a click, comment on the current step.
    page.locator("#step-detail").click()
    page.keyboard.press("2")
    page.keyboard.press("a")
    assert page.locator('input[name=label][data-key="2"]').is_checked()
    assert page.locator('input[name=verdict][value="agent_failure"]').is_checked()
    page.click("#review-form button[name=save]")
    page.wait_for_selector(".current-label")
    review = Review.objects.get(episode=episode)
    assert (review.verdict, review.label) == ("agent_failure", "invalid_field")
    page.fill(".comment-form textarea", "Looks like **the wrong field** <script>window.pwned=1</script>")
    page.click(".comment-form button")
    page.wait_for_selector(".comment-body strong")
    assert page.evaluate("window.pwned") is None
    assert Comment.objects.get(episode=episode).body.startswith("Looks like")

    # Find it in a queue made from the browser's filters, and complete it with one key.
    page.goto(f"{live_server.url}/episodes/?success=0&experiment={history.pk}&task={episode.task_id}")
    page.click(".save-queue summary")
    page.fill(".save-queue input[name=name]", "failed ones")
    page.fill(".save-queue input[name=size]", "50")
    page.click(".save-queue button")
    page.wait_for_url(re.compile(r"/review/queues/\d+/"))
    assert page.locator(f'table.queue-items a[href^="/episodes/{episode.pk}/"]').count() == 1
    page.click(f'table.queue-items a[href^="/episodes/{episode.pk}/"]')
    page.wait_for_selector("#complete-next")
    page.locator("#step-detail").click()
    page.keyboard.press("n")
    page.wait_for_load_state()
    page.wait_for_function(f"!location.pathname.startsWith('/episodes/{episode.pk}/')")

    # Export the reviewed episode.
    page.goto(f"{live_server.url}/episodes/?experiment={history.pk}")
    with page.expect_download() as download:
        page.click("a.export-jsonl")
    lines = Path(download.value.path()).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["episode"] for r in records] == [episode.pk]
    assert records[0]["review"]["label"] == "invalid_field"
