"""A dry run of a task's oracle from its page: the instruction, the oracle's calls with their
statuses and bodies, the final answer, every check's result and the reward; operators only,
escaped, and nothing left behind."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from experiments.models import TaskSuite
from experiments.services import dry_run
from experiments.suites import save_suite
from experiments.variants import draw_variants
from simulator.models import ApiCall, World

SUITES = Path(__file__).parent / "suites"
ORACLE = (SUITES / "jira_oracle.yaml").read_text()
EXAMPLE = (SUITES / "example.yaml").read_text()
XSS = "<script>alert('pwned')</script>"

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    from simulator.seeding import load_seed

    return load_seed("acme")


@pytest.fixture
def viewer(make_user):
    client = Client()
    client.force_login(make_user("victor", role="viewers"))
    return client


def dry_run_url(task_id, suite="jira-oracle"):
    return reverse("suite-dry-run", args=[suite, task_id])


def dry_run_section(response):
    html = response.content.decode()
    return html[html.index('<div id="dry-run">') :]


def forked_worlds():
    return World.objects.filter(is_template=False).count(), ApiCall.objects.count()


def test_the_oracle_of_an_example_task_scores_one_with_every_check_passed(acme):
    spec = save_suite(ORACLE).tasks.get(task_id="create-bug").task_spec()
    variant = draw_variants(spec, "train", count=1)[0]
    result = dry_run(variant)
    assert result.error == ""
    assert result.final_answer == "created"
    assert [(c["method"], c["path"], c["status"]) for c in result.calls] == [
        ("POST", "/rest/api/3/issue", 201)
    ]
    assert '"issuetype": {\n' in result.calls[0]["body"]  # pretty-printed
    assert result.verdict.reward == 1.0 and result.verdict.success
    assert result.verdict.checks and all(c.passed for c in result.verdict.checks)


def test_an_operator_dry_runs_a_variant_and_sees_its_calls_and_every_check(operator_client, acme):
    save_suite(ORACLE)
    response = operator_client.post(dry_run_url("read-priority"), {"split": "test", "index": "0"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Dry run of read-priority/test/0" in html
    assert "What is the priority of WEB-" in html
    assert "<code>GET /rest/api/3/issue/WEB-" in html
    assert '<span class="tag ok">200</span>' in html
    assert "Response body" in html and "&quot;key&quot;: &quot;WEB-" in html
    assert "more characters)" in html  # an issue's JSON is cut
    assert "reward 1.000" in html and '<span class="tag ok">success</span>' in html
    # answer, called, not_called: each with its type, result and detail sentence
    assert html.count('<span class="tag ok">passed</span>') == 3
    assert '<span class="tag fail">failed</span>' not in html
    for check_type in ("answer", "called", "not_called"):
        assert f"<td><code>{check_type}</code></td>" in html
    assert "Reward breakdown" in html and "arguments" in html


def test_the_trace_leaves_out_the_setup_and_the_instruction_names_what_it_created(operator_client, acme):
    save_suite(ORACLE)
    response = operator_client.post(dry_run_url("transition-new-issue"), {"split": "train", "index": "0"})
    html = dry_run_section(response)
    assert "Move OPS-" in html and "{{" not in html
    assert "POST /rest/api/3/issue/OPS-" in html  # the solver's transition
    assert "<code>POST /rest/api/3/issue</code>" not in html  # the setup's create is not the oracle's
    assert "reward 1.000" in html
    assert '<span class="tag fail">failed</span>' not in html


def test_a_dry_run_leaves_no_world_behind(operator_client, acme):
    save_suite(ORACLE)
    before = forked_worlds()
    response = operator_client.post(dry_run_url("transition-new-issue"), {"split": "test", "index": "0"})
    assert "reward 1.000" in response.content.decode()
    assert forked_worlds() == before


def test_a_failing_setup_is_reported_and_leaves_no_world(operator_client, acme):
    save_suite(ORACLE.replace("project: {key: OPS}, summary", "project: {key: NOPE}, summary", 1))
    before = forked_worlds()
    response = operator_client.post(dry_run_url("transition-new-issue"))
    assert response.status_code == 200
    assert "setup failed: POST /rest/api/3/issue answered 400" in response.content.decode()
    assert forked_worlds() == before


def test_a_variant_that_does_not_exist_is_refused(operator_client, acme):
    save_suite(EXAMPLE)
    before = forked_worlds()
    response = operator_client.post(dry_run_url("create-page", "example"), {"split": "train", "index": "0"})
    assert response.status_code == 409
    assert "this task&#x27;s family is held out" in response.content.decode()
    assert 'id="dry-run"' not in response.content.decode()
    assert forked_worlds() == before


def test_a_viewer_may_not_dry_run_and_a_get_runs_nothing(viewer, operator_client, acme):
    save_suite(ORACLE)
    before = forked_worlds()
    assert viewer.post(dry_run_url("create-bug")).status_code == 403
    assert operator_client.get(dry_run_url("create-bug")).status_code == 405
    assert forked_worlds() == before
    html = viewer.get(reverse("suite-task", args=["jira-oracle", "create-bug"])).content.decode()
    assert "Dry-run variant" not in html


def test_the_operator_sees_the_dry_run_button_for_the_shown_variant(operator_client, acme):
    save_suite(ORACLE)
    url = reverse("suite-task", args=["jira-oracle", "create-bug"])
    html = operator_client.get(url, {"split": "test", "index": 1}).content.decode()
    assert f'action="{dry_run_url("create-bug")}"' in html
    assert "Dry-run variant test/1" in html


def test_untrusted_text_in_the_instruction_and_the_bodies_is_escaped(operator_client, acme):
    planted = (
        ORACLE.replace("suite: jira-oracle", "suite: planted", 1)
        .replace("summary: [Search returns stale prices,", f'summary: ["{XSS}",', 1)
        .replace(
            'Create a Bug in WEB titled "{{ summary }}"',
            f'Create a Bug {XSS} in WEB titled "{{{{ summary }}}}"',
            1,
        )
    )
    suite = save_suite(planted)
    assert TaskSuite.objects.filter(name="planted").exists()
    spec = suite.tasks.get(task_id="create-bug").task_spec()
    split, index = next(
        (v.split, v.index)
        for split in ("train", "test")
        for v in draw_variants(spec, split)
        if XSS in v.values["summary"]
    )
    response = operator_client.post(dry_run_url("create-bug", "planted"), {"split": split, "index": index})
    html = response.content.decode()
    assert "reward 1.000" in html  # the planted summary was created and checked
    assert XSS not in html
    assert "Create a Bug &lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; in WEB" in html
    assert "&quot;summary&quot;: &quot;&lt;script&gt;" in html  # the request body
