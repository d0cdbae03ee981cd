from pathlib import Path

from django.urls import reverse

from experiments.services import start_experiment
from experiments.suites import save_suite

SUITE = Path(__file__).parent / "suites" / "jira_oracle.yaml"


def test_the_progress_endpoint_reports_a_queued_experiment(client, make_user):
    suite = save_suite(SUITE.read_text())
    experiment = start_experiment(
        make_user("olivia", role="operators"),
        suite,
        "tiny-random",
        "grpo",
        {
            "tasks": "read-priority",
            "iterations": 2,
            "group_size": 2,
            "tasks_per_iteration": 1,
            "eval_every": 0,
        },
    )
    url = reverse("experiment-progress", args=[experiment.pk])
    assert client.get(url).status_code == 302  # login first

    client.force_login(make_user("vera", role="viewers"))
    body = client.get(url).json()
    assert body["id"] == experiment.pk
    assert body["status"] == "queued"
    assert (body["iteration"], body["iterations"]) == (1, 2)  # the first iteration is scheduled
    assert (body["episodes_done"], body["episodes_total"]) == (0, 2 * 1 * 2)


def test_the_progress_endpoint_of_a_missing_experiment_is_404(client, make_user):
    client.force_login(make_user())
    assert client.get(reverse("experiment-progress", args=[999999])).status_code == 404


def test_the_experiments_page_lists_experiments_newest_first_escaped(
    client, make_user, django_assert_max_num_queries
):
    suite = save_suite(SUITE.read_text())
    owner = make_user("olivia", role="operators")
    tiny = {"tasks": "read-priority", "iterations": 1, "group_size": 2, "tasks_per_iteration": 1}
    first = start_experiment(owner, suite, "tiny-random", "grpo", tiny, name="<b>first</b>")
    second = start_experiment(owner, suite, "tiny-random", "grpo", tiny, name="second")
    client.force_login(make_user("vera", role="viewers"))
    with django_assert_max_num_queries(4):  # session, user, experiments with their counts
        html = client.get(reverse("home")).content.decode()
    assert html.index(second.name) < html.index("&lt;b&gt;first&lt;/b&gt;")
    assert "<b>first</b>" not in html
    assert reverse("experiment-progress", args=[first.pk]) in html
