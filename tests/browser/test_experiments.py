"""The experiment pages in headless Chromium: launch from the form, a curve updating live, a click
through to the episodes, the group view and a comparison."""

import re
from pathlib import Path

import pytest

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Checkpoint, Experiment, MetricPoint, TaskSuite
from experiments.suites import save_suite

pytestmark = pytest.mark.browser

ORACLE_SUITE = Path(__file__).parents[1] / "experiments" / "suites" / "jira_oracle.yaml"

# Where a plotly heatmap cell or curve point is on the screen, from the figure's own axes.
CELL = """(element) => {
  const trace = element.data.find((t) => t.type === "heatmap");
  const layout = element._fullLayout, box = element.getBoundingClientRect();
  for (let row = 0; row < trace.z.length; row++) {
    for (let col = 0; col < trace.z[row].length; col++) {
      if (trace.z[row][col] === null) continue;
      return {x: box.left + layout._size.l + layout.xaxis.l2p(trace.x[col]),
              y: box.top + layout._size.t + layout.yaxis.d2p(trace.y[row]),
              iteration: trace.x[col], task: trace.meta.tasks[row]};
    }
  }
  return null;
}"""
POINT = """(element) => {
  const trace = element.data.find((t) => t.name === "train mean");
  const layout = element._fullLayout, box = element.getBoundingClientRect(), i = trace.x.length - 1;
  return {x: box.left + layout._size.l + layout.xaxis.l2p(trace.x[i]),
          y: box.top + layout._size.t + layout.yaxis.l2p(trace.y[i]), iteration: trace.x[i]};
}"""


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def core_suite(transactional_db):
    load_builtin_suites()
    return TaskSuite.objects.get(name="atlassian-core")


def _click(page, spot):
    page.mouse.move(spot["x"], spot["y"])
    page.mouse.click(spot["x"], spot["y"])


def test_an_operator_launches_a_tiny_experiment_from_the_form(page, live_server, browser_user):
    suite = save_suite(ORACLE_SUITE.read_text())
    page.goto(f"{live_server.url}/")
    page.click("text=New experiment")
    page.click("text=Quick smoke test (tiny-random)")
    page.select_option("select[name=suite]", suite.name)
    page.fill("input[name=name]", "tiny from the browser")
    page.fill("input[name=tasks]", "read-priority")
    # start_experiment draws the suite's variants before it answers: slow on a busy machine
    with page.expect_navigation(url=re.compile(r"/experiments/\d+/$"), timeout=90_000):
        page.click("button[type=submit]:has-text('Launch')", no_wait_after=True)
    experiment = Experiment.objects.get(name="tiny from the browser")
    assert experiment.status == Experiment.QUEUED and experiment.owner == browser_user
    assert experiment.hyperparameters["group_size"] == 2 and experiment.model_name == "tiny-random"
    assert page.locator("h1").inner_text() == "tiny from the browser"
    assert page.locator("#exp-status").inner_text() == "queued"


def test_a_bad_value_is_shown_at_its_field(page, live_server):
    save_suite(ORACLE_SUITE.read_text())
    page.goto(f"{live_server.url}/experiments/new/")
    page.fill("input[name=group_size]", "1")
    with page.expect_navigation(timeout=90_000):
        page.click("button[type=submit]:has-text('Launch')", no_wait_after=True)
    error = page.locator(".field[data-name=group_size] .errorlist")
    assert "greater than or equal to 2" in error.inner_text()
    assert Experiment.objects.count() == 0


def test_a_running_experiments_curve_gains_a_point_without_reload(
    page, live_server, browser_user, core_suite
):
    run = record_history(owner=browser_user, suite=core_suite, iterations=3, status=Experiment.RUNNING)
    page.goto(f"{live_server.url}/experiments/{run.pk}/")
    page.wait_for_selector("#curve-loss[data-points='3']")
    page.evaluate("window.__sameDocument = true")
    MetricPoint.objects.create(experiment=run, iteration=4, split="train", name="loss", value=0.123)
    Experiment.objects.filter(pk=run.pk).update(current_iteration=4)
    page.wait_for_selector("#curve-loss[data-points='4']", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True  # not reloaded
    assert page.evaluate("document.getElementById('curve-loss').data[0].y.at(-1)") == pytest.approx(0.123)


def test_a_new_checkpoint_appears_in_the_list_without_reload(page, live_server, browser_user, core_suite):
    run = record_history(owner=browser_user, suite=core_suite, iterations=3, status=Experiment.RUNNING)
    page.goto(f"{live_server.url}/experiments/{run.pk}/")
    page.wait_for_selector("#curve-loss[data-points='3']")
    page.evaluate("window.__sameDocument = true")
    Checkpoint.objects.create(experiment=run, version=4, path="x", metrics={"reward_mean": 0.5})
    page.wait_for_selector("#experiment-records a[href$='/checkpoints/4/download/']", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True


def test_clicking_a_heatmap_cell_opens_its_episodes(page, live_server, browser_user, core_suite):
    run = record_history(owner=browser_user, suite=core_suite, iterations=5, tasks_per_iteration=20)
    page.goto(f"{live_server.url}/experiments/{run.pk}/")
    page.wait_for_selector("#curve-heatmap[data-points]")
    page.locator("#curve-heatmap").scroll_into_view_if_needed()
    cell = page.locator("#curve-heatmap").evaluate(CELL)  # in viewport coordinates
    _click(page, cell)
    page.wait_for_url(re.compile(r"/episodes/\?"))
    assert f"experiment={run.pk}" in page.url
    assert f"iteration={cell['iteration']}" in page.url and f"task={cell['task']}" in page.url
    assert "sort=-reward" in page.url


def test_clicking_a_reward_point_opens_that_iterations_episodes(page, live_server, browser_user, core_suite):
    run = record_history(owner=browser_user, suite=core_suite, iterations=4)
    page.goto(f"{live_server.url}/experiments/{run.pk}/")
    page.wait_for_selector("#curve-reward[data-points]")
    page.locator("#curve-reward").scroll_into_view_if_needed()
    point = page.locator("#curve-reward").evaluate(POINT)
    _click(page, point)
    page.wait_for_url(re.compile(r"/episodes/\?"))
    assert f"iteration={point['iteration']}" in page.url and "split=train" in page.url


def test_the_group_view_opens_from_the_experiment_page(page, live_server, browser_user, core_suite):
    run = record_history(owner=browser_user, suite=core_suite, iterations=3, group_size=4)
    page.goto(f"{live_server.url}/experiments/{run.pk}/")
    page.locator("ul.groups a").first.click()
    page.wait_for_url(re.compile(r"/iterations/3/groups/\d+/\d+/$"))
    assert page.locator("h1").inner_text().startswith("Group:")
    assert page.locator("table.group tbody tr").count() == 4


def test_two_runs_are_compared_from_the_list(page, live_server, browser_user, core_suite):
    a = record_history(owner=browser_user, suite=core_suite, iterations=3, seed=1, name="run A")
    b = record_history(owner=browser_user, suite=core_suite, iterations=4, seed=2, name="run B")
    page.goto(f"{live_server.url}/")
    page.check(f"input[name=pick][value='{a.pk}']")
    page.check(f"input[name=pick][value='{b.pk}']")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r"/experiments/compare/\?"))
    page.wait_for_selector("#compare-reward[data-points]")
    assert page.locator("#compare-reward").evaluate("(e) => e.data.length") == 2
    assert page.locator("table.compare tbody tr").count() == core_suite.tasks.count()
    assert "iterations" in page.locator("table.diff").inner_text()
