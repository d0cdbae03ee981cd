"""The task suite pages: list, suite, task with a sample variant and its check, the YAML editor
and download; login, the operators' permission, escaping and the list's query count."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.models import TaskSuite
from experiments.suites import save_suite

SUITES = Path(__file__).parent / "suites"
EXAMPLE = (SUITES / "example.yaml").read_text()
ORACLE = (SUITES / "jira_oracle.yaml").read_text()
XSS = "<script>alert('pwned')</script>"

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    from simulator.seeding import load_seed

    return load_seed("acme")


def named(text, name):
    return text.replace("suite: example", f"suite: {name}", 1)


def test_every_suite_page_sends_an_anonymous_visitor_to_login(client):
    save_suite(EXAMPLE)
    for url in (
        reverse("suite", args=["example"]),
        reverse("suite-task", args=["example", "read-priority"]),
        reverse("suite-download", args=["example"]),
        reverse("suite-new"),
        reverse("suite-edit", args=["example"]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_each_suite_with_its_tasks_and_variants(viewer):
    save_suite(EXAMPLE, builtin=True)
    html = viewer.get(reverse("suites")).content.decode()
    assert reverse("suite", args=["example"]) in html
    assert "built-in" in html
    # transition-issue 6/3, create-page (family held out) 0/5, read-priority 20/5 by default
    assert '<td class="num">3</td>' in html
    assert '<td class="num">26</td>' in html
    assert '<td class="num">13</td>' in html
    assert "New suite" not in html  # viewers do not edit


def test_the_list_costs_the_same_queries_for_many_suites(viewer, django_assert_max_num_queries):
    save_suite(named(EXAMPLE, "first"))
    with django_assert_max_num_queries(8) as few:
        viewer.get(reverse("suites"))
    for name in ("second", "third", "fourth"):
        save_suite(named(EXAMPLE, name))
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = viewer.get(reverse("suites")).content.decode()
    assert "fourth" in html


def test_the_suite_page_lists_its_tasks_with_split_checks_and_reward(viewer, acme):
    save_suite(EXAMPLE)
    html = viewer.get(reverse("suite", args=["example"])).content.decode()
    assert "ticket-transition" in html
    assert "held out: summary" in html
    assert "family held out" in html
    assert "<code>issue_fields</code>" in html
    assert "weighted" in html
    assert "2 call(s)" in html  # the transition task's solution: two calls and an answer
    # each task with a sample variant: train/0, or test/0 for a held-out family
    assert "Sample train/0: What is the priority of OPS-" in html
    assert "Sample test/0: Create a page titled" in html
    assert "path: /rest/api/3/issue/{{ issue.key }}/transitions" in html  # setup names stay as written


def test_the_task_page_shows_a_sample_variant(viewer, acme):
    save_suite(EXAMPLE)
    url = reverse("suite-task", args=["example", "read-priority"])
    html = viewer.get(url, {"split": "test", "index": 1}).content.decode()
    assert "Variant test/1" in html
    assert "What is the priority of OPS-" in html
    assert "not_called" in html
    assert "Check sample variants" not in html  # viewers cannot run checks


def test_untrusted_suite_text_is_escaped_everywhere(operator_client, acme):
    text = EXAMPLE.replace(
        "description: A small suite used by the tests and shown in docs/suites.md.",
        f'description: "{XSS}"',
    ).replace('"{{ title }}" under', f'"{{{{ title }}}}" {XSS} under')
    save_suite(text)
    for url in (
        reverse("suites"),
        reverse("suite", args=["example"]),
        reverse("suite-task", args=["example", "create-page"]) + "?split=test",
        reverse("suite-edit", args=["example"]),
    ):
        html = operator_client.get(url).content.decode()
        assert XSS not in html, url
    assert "&lt;script&gt;" in html


def test_a_viewer_may_not_write_or_check(viewer, acme):
    save_suite(EXAMPLE)
    assert viewer.get(reverse("suite-new")).status_code == 403
    assert viewer.get(reverse("suite-edit", args=["example"])).status_code == 403
    assert viewer.post(reverse("suite-new"), {"source": named(EXAMPLE, "mine")}).status_code == 403
    assert viewer.post(reverse("suite-check", args=["example", "read-priority"])).status_code == 403
    assert not TaskSuite.objects.filter(name="mine").exists()


def test_an_operator_saves_a_pasted_suite(operator_client):
    response = operator_client.post(reverse("suite-new"), {"source": EXAMPLE})
    assert response.status_code == 302
    assert response["Location"] == reverse("suite", args=["example"])
    assert TaskSuite.objects.get(name="example").source == EXAMPLE


def test_an_operator_uploads_a_suite_file(operator_client):
    upload = SimpleUploadedFile("oracle.yaml", ORACLE.encode(), content_type="text/yaml")
    response = operator_client.post(reverse("suite-new"), {"source": "", "file": upload})
    assert response.status_code == 302
    assert TaskSuite.objects.get(name="jira-oracle").tasks.count() == 4


def test_it_rejects_bad_yaml_with_line_and_column_and_keeps_the_text(operator_client):
    broken = EXAMPLE.replace("issue_fields:\n          issue:", "isue_fields:\n          issue:", 1)
    response = operator_client.post(reverse("suite-new"), {"source": broken})
    assert response.status_code == 400
    html = response.content.decode()
    assert "line 33, column 9" in html
    assert "unknown check type &#x27;isue_fields&#x27; (did you mean &#x27;issue_fields&#x27;?)" in html
    assert 'id="line-33" class="has-problem"' in html
    # Nothing is lost: the whole text is back in the editor, escaped.
    textarea = html.split('name="source"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]
    assert textarea == broken.replace("'", "&#x27;").replace('"', "&quot;").replace("<", "&lt;").replace(
        ">", "&gt;"
    )
    assert not TaskSuite.objects.exists()


def test_it_reports_invalid_yaml_syntax_in_place(operator_client):
    response = operator_client.post(reverse("suite-new"), {"source": "suite: x\ntasks: [\n  - id: a\n"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "this is not valid YAML" in html
    assert "has-problem" in html


def test_an_edit_of_a_built_in_suite_must_take_another_name(operator_client):
    save_suite(EXAMPLE, builtin=True)
    changed = EXAMPLE.replace("version: 2", "version: 3")
    response = operator_client.post(reverse("suite-edit", args=["example"]), {"source": changed})
    assert response.status_code == 400
    assert "is a built-in suite" in response.content.decode()
    assert TaskSuite.objects.get(name="example").version == 2
    response = operator_client.post(
        reverse("suite-edit", args=["example"]), {"source": named(changed, "mine")}
    )
    assert response["Location"] == reverse("suite", args=["mine"])


def test_download_gives_the_yaml_as_saved(viewer):
    save_suite(EXAMPLE)
    response = viewer.get(reverse("suite-download", args=["example"]))
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="example.yaml"'
    assert response.content.decode() == EXAMPLE


def test_an_operator_checks_a_task_s_sample_variants(operator_client, acme):
    save_suite(ORACLE)
    response = operator_client.post(reverse("suite-check", args=["jira-oracle", "create-bug"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 passed, 0 failed" in html
    assert "create-bug/train/0" in html and "create-bug/test/0" in html
    assert "wrong entity (project WEB → MOB)" in html
    assert "ok   jira-oracle/create-bug/train/0 oracle=1.000" in html


def test_an_unknown_suite_or_task_is_not_found(viewer):
    save_suite(EXAMPLE)
    assert viewer.get(reverse("suite", args=["nope"])).status_code == 404
    assert viewer.get(reverse("suite-task", args=["example", "nope"])).status_code == 404
