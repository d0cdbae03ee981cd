"""The experiment pages: the list, the experiment page and its endpoints, the controls, the group
view, the comparison and checkpoint downloads — on recorded histories (experiments.history)."""

import io
import zipfile
from pathlib import Path

import plotly.graph_objects as go
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import Episode, Experiment, MetricPoint, TaskSuite
from experiments.selectors import MAX_POINTS
from experiments.services import start_experiment
from experiments.suites import save_suite

SUITE = Path(__file__).parent / "suites" / "jira_oracle.yaml"
TINY = {"tasks": "read-priority", "iterations": 1, "group_size": 2, "tasks_per_iteration": 1}


@pytest.fixture(autouse=True)
def fresh_cache():
    """curves.json caches by experiment pk and history size; pks come back between tests."""
    cache.clear()


@pytest.fixture
def suite(db):
    load_builtin_suites()
    return TaskSuite.objects.get(name="atlassian-core")


@pytest.fixture
def owner(make_user):
    return make_user("olivia", role="operators")


@pytest.fixture
def history(suite, owner):
    return record_history(
        owner=owner, suite=suite, iterations=12, tasks_per_iteration=4, group_size=4, eval_every=4
    )


# --- progress.json ------------------------------------------------------------------------------


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


# --- The list -----------------------------------------------------------------------------------


def test_the_experiments_page_lists_experiments_newest_first_escaped(
    client, make_user, django_assert_num_queries
):
    suite = save_suite(SUITE.read_text())
    owner = make_user("olivia", role="operators")
    first = start_experiment(owner, suite, "tiny-random", "grpo", TINY, name="<b>first</b>")
    second = start_experiment(owner, suite, "tiny-random", "grpo", TINY, name="second")
    client.force_login(make_user("vera", role="viewers"))
    # session, user, filter choices, experiments (with counts and best reward), permissions (2)
    with django_assert_num_queries(6):
        html = client.get(reverse("home")).content.decode()
    assert html.index(second.name) < html.index("&lt;b&gt;first&lt;/b&gt;")
    assert "<b>first</b>" not in html
    assert reverse("experiment", args=[first.pk]) in html
    assert reverse("experiment-new") not in html  # viewers cannot launch


def test_the_list_shows_progress_and_the_best_held_out_reward_in_fixed_queries(
    viewer, suite, owner, django_assert_num_queries
):
    runs = [record_history(owner=owner, suite=suite, iterations=4, eval_every=2, seed=s) for s in range(3)]
    with django_assert_num_queries(6):
        response = viewer.get(reverse("home"))
    rows = {e.pk: e for e in response.context["experiments"]}
    for run in runs:
        best = (
            MetricPoint.objects.filter(experiment=run, split="test", name="reward").order_by("-value").first()
        )
        assert rows[run.pk].best_heldout == pytest.approx(best.value)
        assert rows[run.pk].episodes_done == Episode.objects.filter(experiment=run).count()


def test_the_list_filters_and_sorts(viewer, suite, owner, make_user):
    other = make_user("otto", role="operators")
    done = record_history(owner=owner, suite=suite, iterations=2, eval_every=1, seed=1)
    failed = record_history(
        owner=other, suite=suite, iterations=2, eval_every=1, seed=2, status=Experiment.FAILED
    )
    sft = record_history(
        owner=owner, suite=suite, iterations=2, eval_every=1, seed=3, algorithm=Experiment.SFT
    )

    def listed(**params):
        return [e.pk for e in viewer.get(reverse("home"), params).context["experiments"]]

    assert listed(status="failed") == [failed.pk]
    assert listed(owner=other.pk) == [failed.pk]
    assert listed(algorithm="sft") == [sft.pk]
    assert set(listed(suite=suite.pk, model="tiny-random")) == {done.pk, failed.pk, sft.pk}
    assert listed(sort="oldest") == [done.pk, failed.pk, sft.pk]
    best = listed(sort="best")
    rewards = [
        MetricPoint.objects.filter(experiment_id=pk, split="test", name="reward").order_by("-value")[0].value
        for pk in best
    ]
    assert rewards == sorted(rewards, reverse=True)
    assert listed(status="no-such-status") == [sft.pk, failed.pk, done.pk]  # a bad filter is ignored


# --- The experiment page ------------------------------------------------------------------------


def test_the_experiment_page_shows_status_checkpoints_and_config_in_fixed_queries(
    viewer, history, django_assert_num_queries
):
    with django_assert_num_queries(18):
        response = viewer.get(reverse("experiment", args=[history.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "completed" in html and "curve-reward" in html and "curve-heatmap" in html
    assert reverse("experiment-checkpoint", args=[history.pk, 12]) in html
    assert reverse("experiment-curves", args=[history.pk]) in html  # in the page's json config
    iteration = history.iteration_set.get(index=12)
    task, variant = iteration.groups[0]
    assert reverse("experiment-group", args=[history.pk, 12, task, variant]) in html
    assert "Pause" not in html and "Cancel" not in html  # viewers see no controls


def test_operators_see_the_controls_of_a_running_experiment(client, owner, suite):
    running = record_history(owner=owner, suite=suite, iterations=3, status=Experiment.RUNNING)
    client.force_login(owner)
    html = client.get(reverse("experiment", args=[running.pk])).content.decode()
    assert reverse("experiment-control", args=[running.pk, "pause"]) in html
    assert reverse("experiment-control", args=[running.pk, "cancel"]) in html
    assert reverse("experiment-control", args=[running.pk, "resume"]) not in html


def test_a_failed_experiment_shows_its_error_and_traceback_escaped(viewer, owner, suite):
    failed = record_history(owner=owner, suite=suite, iterations=2, status=Experiment.FAILED)
    Experiment.objects.filter(pk=failed.pk).update(
        error="<img src=x onerror=alert(1)> out of memory",
        traceback='Traceback (most recent call last):\n  File "<x>"',
    )
    html = viewer.get(reverse("experiment", args=[failed.pk])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt; out of memory" in html
    assert "<img src=x" not in html
    assert "Traceback (most recent call last)" in html


def test_the_curves_are_sql_aggregates_of_the_episodes(viewer, history, django_assert_num_queries):
    # session, user, experiment, tasks, iteration indexes, episode and metric aggregates
    with django_assert_num_queries(7):
        body = viewer.get(reverse("experiment-curves", args=[history.pk])).json()
    figures = body["figures"]
    for figure in figures.values():
        go.Figure(figure)  # valid plotly figures
    mean = next(t for t in figures["reward"]["data"] if t["name"] == "train mean")
    assert mean["x"] == list(range(1, 13))
    train = Episode.objects.filter(experiment=history, split="train", iteration__index=5)
    assert mean["y"][4] == pytest.approx(sum(e.reward for e in train) / train.count(), abs=1e-4)
    assert mean["meta"]["split"] == "train"  # with x, what a click opens
    band = {t["name"]: t["y"][4] for t in figures["reward"]["data"] if t["name"] in ("min", "min-max")}
    assert band == pytest.approx(
        {"min": min(e.reward for e in train), "min-max": max(e.reward for e in train)}
    )
    held_out = next(t for t in figures["success"]["data"] if t["name"] == "held-out")
    assert held_out["x"] == [4, 8, 12]
    heatmap = figures["heatmap"]["data"][0]
    tasks = list(history.suite.tasks.order_by("position"))
    assert heatmap["meta"]["tasks"] == [t.pk for t in tasks]
    sampled = train.first()
    row, column = heatmap["meta"]["tasks"].index(sampled.task_id), heatmap["x"].index(5)
    same = train.filter(task_id=sampled.task_id)
    assert heatmap["z"][row][column] == pytest.approx(sum(e.success for e in same) / same.count(), abs=1e-3)
    for name in ("loss", "kl", "entropy", "clip_fraction", "grad_norm", "zero_variance_fraction"):
        assert figures[name]["data"][0]["x"] == list(range(1, 13))
    assert len(figures["throughput"]["data"]) == 2  # tokens/s and generation tokens/s recorded


def test_unchanged_curves_are_served_from_the_cache_until_the_history_grows(
    viewer, history, django_assert_num_queries
):
    url = reverse("experiment-curves", args=[history.pk])
    first = viewer.get(url).json()
    with django_assert_num_queries(3):  # session, user, the experiment with its history's size
        assert viewer.get(url).json() == first
    MetricPoint.objects.create(experiment=history, iteration=13, split="train", name="loss", value=0.5)
    loss = viewer.get(url).json()["figures"]["loss"]["data"][0]
    assert loss["x"][-1] == 13 and loss["y"][-1] == 0.5


def test_newly_failing_tasks_come_first(viewer, suite, owner):
    run = record_history(
        owner=owner, suite=suite, iterations=12, tasks_per_iteration=20, group_size=2, eval_every=0
    )
    tasks = list(suite.tasks.order_by("position").values_list("pk", flat=True))
    regressed, worse = tasks[7], tasks[3]
    episodes = Episode.objects.filter(experiment=run)
    episodes.update(success=True)  # every task solved throughout ...
    episodes.filter(task_id=regressed, iteration__index__gt=6).update(success=False)  # ... but two
    episodes.filter(task_id=worse, iteration__index__gt=9).update(success=False)
    body = viewer.get(reverse("experiment-curves", args=[run.pk])).json()
    trends = {t["pk"]: t for t in body["trends"]}
    order = body["figures"]["heatmap"]["data"][0]["meta"]["newly_failing"]
    assert order[:2] == [regressed, worse]
    assert (
        trends[regressed]["best"] == 1 and trends[regressed]["latest"] == 0 and trends[regressed]["drop"] == 1
    )
    assert 0 < trends[worse]["drop"] < 1
    assert all(trends[pk]["drop"] == 0 for pk in order[2:] if trends[pk]["observed"])


def test_long_runs_are_downsampled_to_at_most_max_points_per_line(viewer, history, django_assert_num_queries):
    iterations = 2 * MAX_POINTS + 7
    MetricPoint.objects.bulk_create(
        MetricPoint(experiment=history, iteration=i, split="train", name="loss", value=1 / i)
        for i in range(13, iterations + 1)
    )
    Experiment.objects.filter(pk=history.pk).update(current_iteration=iterations)
    with django_assert_num_queries(7):
        body = viewer.get(reverse("experiment-curves", args=[history.pk])).json()
    assert body["bucket"] == 3
    loss = body["figures"]["loss"]["data"][0]
    assert len(loss["x"]) <= MAX_POINTS and loss["x"][-1] == iterations


def test_the_experiment_pages_need_a_login(client, history):
    for url in (
        reverse("home"),
        reverse("experiment", args=[history.pk]),
        reverse("experiment-curves", args=[history.pk]),
        reverse("experiment-new"),
        reverse("experiment-compare"),
        reverse("experiment-checkpoint", args=[history.pk, 1]),
    ):
        assert client.get(url).status_code == 302, url


# --- Controls -----------------------------------------------------------------------------------


def test_an_operator_pauses_resumes_and_cancels(client, owner, suite, monkeypatch):
    monkeypatch.setattr("experiments.services.schedule_iteration", lambda *a, **k: None)
    run = record_history(owner=owner, suite=suite, iterations=2, status=Experiment.RUNNING)
    client.force_login(owner)
    for action, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        response = client.post(reverse("experiment-control", args=[run.pk, action]))
        assert response.status_code == 302
        run.refresh_from_db()
        assert run.status == status
    response = client.post(reverse("experiment-control", args=[run.pk, "resume"]), follow=True)
    assert "cannot become running" in response.content.decode()


def test_reviewers_and_viewers_cannot_control_experiments(client, make_user, owner, suite):
    run = record_history(owner=owner, suite=suite, iterations=2, status=Experiment.RUNNING)
    for role in ("reviewers", "viewers"):
        client.force_login(make_user(f"user-{role}", role=role))
        assert client.post(reverse("experiment-control", args=[run.pk, "cancel"])).status_code == 403
        assert client.get(reverse("experiment-new")).status_code == 403
    run.refresh_from_db()
    assert run.status == Experiment.RUNNING


def test_controls_need_post(client, owner, suite):
    run = record_history(owner=owner, suite=suite, iterations=2, status=Experiment.RUNNING)
    client.force_login(owner)
    assert client.get(reverse("experiment-control", args=[run.pk, "pause"])).status_code == 405


# --- Group view ---------------------------------------------------------------------------------


def test_the_group_view_shows_every_sample_with_its_advantage(viewer, history, django_assert_num_queries):
    iteration = history.iteration_set.get(index=3)
    task, variant = iteration.groups[0]
    url = reverse("experiment-group", args=[history.pk, 3, task, variant])
    # session, user, experiment, iteration, episodes, steps, tasks, the iterations before and after
    with django_assert_num_queries(8):
        response = viewer.get(url)
    group = response.context["group"]
    samples = Episode.objects.filter(iteration=iteration, task_id=task, variant_index=variant, split="train")
    assert [s["episode"].pk for s in group["samples"]] == list(
        samples.order_by("sample_index").values_list("pk", flat=True)
    )
    rewards = [s["episode"].reward for s in group["samples"]]
    mean = sum(rewards) / len(rewards)
    if not group["zero_variance"]:
        import statistics

        std = statistics.stdev(rewards)
        assert group["samples"][0]["advantage"] == pytest.approx((rewards[0] - mean) / (std + 1e-4))
    html = response.content.decode()
    for sample in group["samples"]:
        assert f"/episodes/{sample['episode'].pk}/" in html
    before = history.iteration_set.get(index=2)
    expected = [task, variant] if [task, variant] in before.groups else before.groups[0]
    assert reverse("experiment-group", args=[history.pk, 2, *expected]) in html


def test_a_zero_variance_group_is_flagged(viewer, history):
    iteration = history.iteration_set.get(index=2)
    task, variant = iteration.groups[0]
    Episode.objects.filter(iteration=iteration, task_id=task, variant_index=variant).update(
        reward=1.0, success=True
    )
    response = viewer.get(reverse("experiment-group", args=[history.pk, 2, task, variant]))
    assert response.context["group"]["zero_variance"]
    assert all(s["advantage"] == 0 for s in response.context["group"]["samples"])
    assert "Zero variance" in response.content.decode()


def test_the_group_view_finds_the_first_differing_call(viewer, history):
    iteration = history.iteration_set.get(index=2)
    task, variant = iteration.groups[0]
    episodes = list(
        Episode.objects.filter(iteration=iteration, task_id=task, variant_index=variant, split="train")
    )
    for episode in episodes:
        for step in episode.steps.all():
            step.action = {"method": "GET", "path": f"/rest/api/3/issue/OPS-{step.index}"}
            step.save()
    odd = episodes[1].steps.get(index=1)
    odd.action = {"method": "GET", "path": "/rest/api/3/issue/WEB-9"}
    odd.save()
    response = viewer.get(reverse("experiment-group", args=[history.pk, 2, task, variant]))
    assert response.context["group"]["first_difference"] == 1
    assert "WEB-9" in response.content.decode()


def test_a_missing_group_is_404(viewer, history):
    assert viewer.get(reverse("experiment-group", args=[history.pk, 99, 1, 0])).status_code == 404
    task = history.suite.tasks.first()
    assert viewer.get(reverse("experiment-group", args=[history.pk, 1, task.pk, 999])).status_code == 404


# --- Compare ------------------------------------------------------------------------------------


def test_compare_overlays_curves_diffs_configs_and_tables_tasks(
    viewer, suite, owner, django_assert_num_queries
):
    a = record_history(owner=owner, suite=suite, iterations=6, eval_every=3, seed=1)
    b = record_history(
        owner=owner, suite=suite, iterations=8, eval_every=4, seed=2, model_name="smollm2-135m"
    )
    # session, user, experiments, tasks, iteration indexes, train and held-out curves, final results
    with django_assert_num_queries(8):
        response = viewer.get(reverse("experiment-compare"), {"ids": f"{a.pk},{b.pk}"})
    html = response.content.decode()
    differing = {row["key"]: row["values"] for row in response.context["differing"]}
    assert differing["model"] == ["tiny-random", "smollm2-135m"]
    assert differing["iterations"] == [6, 8] and "group_size" not in differing
    figures = response.context["figures"]
    go.Figure(figures["reward"])
    assert len(figures["reward"]["data"]) == 2
    recorded = MetricPoint.objects.filter(experiment=a, split="train", name="reward_mean").order_by(
        "iteration"
    )
    assert figures["reward"]["data"][0]["y"] == pytest.approx([p.value for p in recorded], abs=1e-4)
    table = response.context["runs"]["tasks"]
    assert len(table) == suite.tasks.count()
    final = Episode.objects.filter(
        experiment=b, split="test", iteration__index=8, task_id=table[0]["task"]
    ).get()
    assert table[0]["cells"][1]["reward"] == pytest.approx(final.reward)
    only_a = {row["task_id"] for row in table if row["cells"][0]["solved"] and not row["cells"][1]["solved"]}
    assert set(response.context["runs"]["solves_only"][a.pk]) == only_a
    assert "compare-figures" in html


def test_compare_takes_the_lists_checkboxes(viewer, suite, owner):
    a = record_history(owner=owner, suite=suite, iterations=2, seed=1)
    b = record_history(owner=owner, suite=suite, iterations=2, seed=2)
    response = viewer.get(reverse("experiment-compare") + f"?pick={b.pk}&pick={a.pk}")
    assert [e.pk for e in response.context["experiments"]] == [b.pk, a.pk]


def test_compare_with_fewer_than_two_runs_asks_for_more(viewer):
    response = viewer.get(reverse("experiment-compare"), {"ids": "1"})
    assert response.status_code == 200 and "Pick two or more" in response.content.decode()


# --- Checkpoints --------------------------------------------------------------------------------


def test_a_checkpoint_downloads_as_a_zip_of_its_adapter(viewer, history):
    checkpoint = history.checkpoints.get(version=3)
    default_storage.save(f"{checkpoint.path}/adapter_config.json", ContentFile(b'{"r": 16}'))
    default_storage.save(f"{checkpoint.path}/adapter_model.safetensors", ContentFile(b"\x00" * 1000))
    response = viewer.get(reverse("experiment-checkpoint", args=[history.pk, 3]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f"experiment-{history.pk}-v3.zip" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert archive.read("adapter_config.json") == b'{"r": 16}'


def test_a_checkpoint_whose_files_are_gone_is_404(viewer, history):
    assert viewer.get(reverse("experiment-checkpoint", args=[history.pk, 4])).status_code == 404
    assert viewer.get(reverse("experiment-checkpoint", args=[history.pk, 999])).status_code == 404


# --- The launch form ----------------------------------------------------------------------------


def _launch_data(suite_name, **changes):
    from experiments import hyperparameters

    data = {"suite": suite_name, "model": "tiny-random", "algorithm": "grpo", "name": ""}
    for spec in hyperparameters.FIELDS:
        data[spec.name] = ", ".join(spec.default) if spec.type == hyperparameters.LIST else spec.default
    data.update(changes)
    return data


def test_the_form_offers_every_hyperparameter_with_its_default_help_and_bounds(client, owner, suite):
    from experiments import hyperparameters

    client.force_login(owner)
    html = client.get(reverse("experiment-new")).content.decode()
    for spec in hyperparameters.FIELDS:
        assert f'name="{spec.name}"' in html
        assert spec.help.replace("'", "&#x27;").replace('"', "&quot;") in html
    assert 'name="iterations" value="10" min="1" max="10000"' in html
    assert "Quick smoke test (tiny-random)" in html and "SFT then GRPO" in html


def test_a_preset_fills_the_form(client, owner, suite):
    client.force_login(owner)
    form = client.get(reverse("experiment-new"), {"preset": "sft-grpo"}).context["form"]
    assert form.initial["algorithm"] == "sft+grpo" and form.initial["sft_epochs"] == 2


def test_an_operator_launches_an_experiment_from_the_form(client, owner):
    suite = save_suite(SUITE.read_text())
    client.force_login(owner)
    data = _launch_data(
        suite.name,
        name="from the form",
        tasks="read-priority",
        iterations=1,
        group_size=2,
        tasks_per_iteration=1,
    )
    response = client.post(reverse("experiment-new"), data)
    experiment = Experiment.objects.get(name="from the form")
    assert response.status_code == 302 and response["Location"] == reverse("experiment", args=[experiment.pk])
    assert experiment.status == Experiment.QUEUED and experiment.owner == owner
    assert experiment.hyperparameters["group_size"] == 2 and experiment.hyperparameters["tasks"] == [
        "read-priority"
    ]
    assert experiment.iteration_set.count() == 1  # scheduled as `manage.py experiment start` does


def test_bad_values_are_shown_at_their_fields_and_nothing_is_launched(client, owner):
    suite = save_suite(SUITE.read_text())
    client.force_login(owner)
    response = client.post(
        reverse("experiment-new"), _launch_data(suite.name, group_size=1, temperature="hot")
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "group_size" in form.errors and "temperature" in form.errors
    assert Experiment.objects.count() == 0
    response = client.post(reverse("experiment-new"), _launch_data(suite.name, tasks="no-such-task"))
    assert response.status_code == 400 and Experiment.objects.count() == 0
    assert response.context["form"].errors  # start_experiment's reason, shown on the form


def test_clone_prefills_from_the_parent_and_shows_the_diff(client, owner):
    suite = save_suite(SUITE.read_text())
    parent = start_experiment(owner, suite, "tiny-random", "grpo", TINY, name="parent <run>")
    client.force_login(owner)
    response = client.get(reverse("experiment-new"), {"clone": parent.pk})
    form = response.context["form"]
    assert form.initial["tasks"] == "read-priority" and form.initial["group_size"] == 2
    assert form.initial["name"] == f"parent <run> (clone of #{parent.pk})"
    assert response.context["diff"] == []
    assert "parent &lt;run&gt;" in response.content.decode()
    data = _launch_data(suite.name, **{k: v for k, v in form.initial.items() if v is not None})
    data.update(iterations=3, group_size="x")  # an error: the diff to the parent is shown with it
    response = client.post(reverse("experiment-new"), data)
    assert ("iterations", 1, 3) in response.context["diff"]
    data["group_size"] = 2
    response = client.post(reverse("experiment-new"), data)
    clone = Experiment.objects.exclude(pk=parent.pk).get()
    assert clone.name == f"parent <run> (clone of #{parent.pk})" and clone.hyperparameters["iterations"] == 3
    assert clone.parent == parent  # the lineage, shown on the clone's page
    page = client.get(reverse("experiment", args=[clone.pk])).content.decode()
    assert (
        f'cloned from <a href="{reverse("experiment", args=[parent.pk])}">#{parent.pk} parent &lt;run&gt;'
        in page
    )


def test_names_reach_the_figures_as_text_not_markup(viewer, suite, owner):
    a = record_history(
        owner=owner, suite=suite, iterations=2, seed=1, name="<a href='javascript:alert(1)'>x</a>"
    )
    b = record_history(owner=owner, suite=suite, iterations=2, seed=2)
    response = viewer.get(reverse("experiment-compare"), {"ids": f"{a.pk},{b.pk}"})
    html = response.content.decode()
    assert "<a href='javascript" not in html
    names = [t["name"] for t in response.context["figures"]["reward"]["data"]]
    assert names[0] == f"#{a.pk} &lt;a href='javascript:alert(1)'&gt;x&lt;/a&gt;"
