"""The simulator's read-only pages: worlds, a world, boards, an issue with its history, a space's
page tree and a page; login, escaping and the queries each page costs."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from simulator import pages
from simulator.models import Comment, Issue, Page, World

XSS = "<script>alert('pwned')</script>"
V3 = "/rest/api/3"


@pytest.fixture
def browser(client, make_user):
    client.force_login(make_user("wendy"))
    return client


def urls(world):
    page = Page.objects.filter(world=world, title="Onboarding Guide").get()
    return {
        "worlds": reverse("simulator-worlds"),
        "world": reverse("simulator-world", args=[world.slug]),
        "board": reverse("simulator-board", args=[world.slug, 1]),
        "project board": reverse("simulator-project-board", args=[world.slug, "OPS"]),
        "issue": reverse("simulator-issue", args=[world.slug, "WEB-7"]),
        "space": reverse("simulator-space", args=[world.slug, "ENG"]),
        "page": reverse("simulator-page", args=[world.slug, page.ext_id]),
    }


PAGES = ["worlds", "world", "board", "project board", "issue", "space", "page"]
# Queries per page, session and user included; none of them grows with the world's size.
MAX_QUERIES = {
    "worlds": 4,
    "world": 7,
    "board": 8,
    "project board": 8,
    "issue": 11,
    "space": 5,
    "page": 7,
}


@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_for_a_logged_in_user(name, browser, acme):
    response = browser.get(urls(acme)[name])
    assert response.status_code == 200
    assert response.context["section"] == "simulator"


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(name, client, acme):
    url = urls(acme)[name]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
def test_each_page_runs_a_small_fixed_number_of_queries(name, browser, acme, django_assert_max_num_queries):
    url = urls(acme)[name]
    browser.get(url)  # warm the session
    with django_assert_max_num_queries(MAX_QUERIES[name]):
        browser.get(url)


@pytest.mark.parametrize("name", ["world", "issue", "page"])
def test_the_queries_do_not_grow_with_calls_comments_and_versions(name, browser, acme, jira):
    page = Page.objects.get(world=acme, title="Onboarding Guide")
    url = urls(acme)[name]

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(url).status_code == 200
        return len(queries)

    browser.get(url)
    before = count()
    for n in range(3):
        jira.put(f"{V3}/issue/WEB-7", json={"fields": {"summary": f"Renamed {n}"}})
        jira.post(f"{V3}/issue/WEB-7/comment", json={"body": _adf(f"comment {n}")})
        jira.put(
            f"/wiki/api/v2/pages/{page.ext_id}",
            json={
                "id": str(page.ext_id),
                "status": "current",
                "title": page.title,
                "body": {"representation": "storage", "value": f"<p>v{n}</p>"},
                "version": {"number": page.version + 1 + n},
            },
        )
    assert count() == before


def _adf(text):
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


# --- Worlds ---------------------------------------------------------------------------------------


def test_the_world_list_shows_newest_first_with_kind_calls_and_outcome(browser, acme, jira):
    jira.get(f"{V3}/myself")
    acme.outcome = "failed"
    acme.save(update_fields=["outcome"])
    response = browser.get(reverse("simulator-worlds"))
    rows = response.context["worlds"]
    assert [w.slug for w in rows] == [acme.slug, acme.forked_from.slug]
    assert rows[0].calls == 1
    text = response.content.decode()
    assert f"fork of {acme.forked_from.slug}" in text
    assert "template" in text
    assert "failed" in text


def test_the_world_list_filters_by_seed_and_kind(browser, acme):
    World.objects.create(slug="other-1", seed="other", clock_start=acme.clock_start)
    by_seed = browser.get(reverse("simulator-worlds"), {"seed": "other"}).context["worlds"]
    assert [w.slug for w in by_seed] == ["other-1"]
    templates = browser.get(reverse("simulator-worlds"), {"kind": "template"}).context["worlds"]
    assert [w.slug for w in templates] == [acme.forked_from.slug]
    forks = browser.get(reverse("simulator-worlds"), {"kind": "fork", "seed": "acme"}).context["worlds"]
    assert [w.slug for w in forks] == [acme.slug]


def test_the_world_list_pages_with_a_keyset_cursor(browser, acme, monkeypatch):
    monkeypatch.setattr(pages, "WORLDS_PER_PAGE", 2)
    for n in range(3):
        World.objects.create(slug=f"extra-{n}", seed="acme", clock_start=acme.clock_start)
    first = browser.get(reverse("simulator-worlds"))
    assert [w.slug for w in first.context["worlds"]] == ["extra-2", "extra-1"]
    second = browser.get(reverse("simulator-worlds"), {"after": first.context["after"]})
    assert [w.slug for w in second.context["worlds"]] == ["extra-0", acme.slug]
    third = browser.get(reverse("simulator-worlds"), {"after": second.context["after"]})
    assert [w.slug for w in third.context["worlds"]] == [acme.forked_from.slug]
    assert third.context["after"] == ""
    # A cursor that does not parse shows the first page.
    assert (
        browser.get(reverse("simulator-worlds"), {"after": "junk"}).context["worlds"]
        == first.context["worlds"]
    )


def test_a_world_shows_its_projects_spaces_and_recent_calls(browser, acme, jira):
    jira.get(f"{V3}/myself")
    jira.get(f"{V3}/issue/NOPE-1")
    response = browser.get(reverse("simulator-world", args=[acme.slug]))
    text = response.content.decode()
    assert {p.key for p in response.context["projects"]} == {"WEB", "OPS", "MOB"}
    assert {s.key for s in response.context["spaces"]} >= {"ENG"}
    assert [(c.seq, c.method, c.path, c.status) for c in response.context["calls"]] == [
        (2, "GET", f"{V3}/issue/NOPE-1", 404),
        (1, "GET", f"{V3}/myself", 200),
    ]
    assert reverse("simulator-board", args=[acme.slug, 1]) in text
    assert reverse("simulator-space", args=[acme.slug, "ENG"]) in text


def test_an_unknown_world_is_not_found(browser, db):
    assert browser.get(reverse("simulator-world", args=["nowhere"])).status_code == 404


# --- Boards ---------------------------------------------------------------------------------------


def test_a_scrum_board_shows_the_active_sprint_in_its_columns(browser, acme):
    response = browser.get(reverse("simulator-board", args=[acme.slug, 1]))
    assert response.context["sprint"].state == "active"
    columns = {c["name"]: [i.key for i in c["issues"]] for c in response.context["columns"]}
    assert "WEB-7" in columns["To Do"]
    assert "WEB-5" in columns["Done"]
    assert all("WEB-4" not in keys for keys in columns.values())  # in the future sprint
    text = response.content.decode()
    assert "Cart total ignores discount codes after page reload" in text
    assert "Ada" in text  # the assignee
    assert "regression" in text  # a label
    assert "Highest" in text  # the priority


def test_a_scrum_board_shows_another_sprint_on_request(browser, acme):
    future = Issue.objects.get(world=acme, key="WEB-4").sprints.get()
    response = browser.get(reverse("simulator-board", args=[acme.slug, 1]), {"sprint": future.ext_id})
    keys = [i.key for c in response.context["columns"] for i in c["issues"]]
    assert "WEB-4" in keys
    assert "WEB-7" not in keys


def test_a_kanban_board_and_a_project_board_show_every_issue_by_status(browser, acme):
    kanban = browser.get(reverse("simulator-board", args=[acme.slug, 2]))
    project = browser.get(reverse("simulator-project-board", args=[acme.slug, "ops"]))
    total = Issue.objects.filter(world=acme, project__key="OPS").count()
    for response in (kanban, project):
        assert sum(len(c["issues"]) for c in response.context["columns"]) == total
    names = [c["name"] for c in project.context["columns"]]
    assert names[0] == "To Do"
    assert {"In Progress", "In Review", "Done", "Blocked"} <= set(names)


# --- Issues ---------------------------------------------------------------------------------------


def test_the_issue_page_shows_fields_comments_links_and_sprint(browser, acme):
    response = browser.get(reverse("simulator-issue", args=[acme.slug, "web-7"]))
    text = response.content.decode()
    issue = response.context["issue"]
    assert issue["key"] == "WEB-7"
    assert "Actual: discount line disappears" in text  # the ADF description as text
    assert "Reproduced on staging with SAVE10 and WELCOME5." in text
    assert "WEB Sprint 12" in text
    assert "Highest" in text
    assert "checkout" in text


def test_the_issue_history_shows_what_each_call_changed(browser, acme, jira):
    jira.put(f"{V3}/issue/WEB-7", json={"fields": {"summary": "Discount lost on reload"}})
    jira.post(f"{V3}/issue/WEB-7/transitions", json={"transition": {"id": "21"}})
    jira.post(f"{V3}/issue/WEB-7/comment", json={"body": _adf("On it.")})
    response = browser.get(reverse("simulator-issue", args=[acme.slug, "WEB-7"]))
    history = response.context["history"]
    assert [(h["seq"], h["method"], h["path"]) for h in history] == [
        (1, "PUT", f"{V3}/issue/WEB-7"),
        (2, "POST", f"{V3}/issue/WEB-7/transitions"),
        (3, "POST", f"{V3}/issue/WEB-7/comment"),
    ]
    summary = history[0]["changes"][0]
    assert (summary["field"], summary["before"], summary["after"]) == (
        "summary",
        "Cart total ignores discount codes after page reload",
        "Discount lost on reload",
    )
    assert ("status", "To Do", "In Progress") in [
        (c["field"], c["before"], c["after"]) for c in history[1]["changes"]
    ]
    assert any(c["object"].startswith("comment ") for c in history[2]["changes"])
    text = response.content.decode()
    assert "Discount lost on reload" in text
    assert "Cart total ignores discount codes after page reload" in text


def test_an_unknown_issue_is_not_found(browser, acme):
    assert browser.get(reverse("simulator-issue", args=[acme.slug, "WEB-999"])).status_code == 404


# --- Confluence -----------------------------------------------------------------------------------


def test_the_space_shows_its_page_tree_nested(browser, acme):
    response = browser.get(reverse("simulator-space", args=[acme.slug, "ENG"]))
    text = response.content.decode()
    home, guide, setup = (
        text.index(t) for t in ("Engineering Home", "Onboarding Guide", "Development Environment Setup")
    )
    assert home < guide < setup
    # The guide's children sit in a list nested inside the guide's item.
    between = text[guide:setup]
    assert "<ul>" in between
    assert "</li>" not in between


def test_the_page_outline_survives_a_parent_cycle():
    a, b, c = (Page(pk=n, ext_id=n, title=t) for n, t in ((1, "a"), (2, "b"), (3, "c")))
    a.parent_id, b.parent_id, c.parent_id = 2, 1, None  # a and b are each other's parent
    outline = pages.page_outline([a, b, c])
    assert [s["page"].title for s in outline if "page" in s] == ["c", "a", "b"]
    opens = sum(1 for s in outline if "open" in s)
    assert opens == sum(1 for s in outline if "close" in s) == 1


def test_the_page_view_shows_the_storage_body_as_source_and_its_versions(browser, acme, jira):
    page = Page.objects.get(world=acme, title="Onboarding Guide")
    jira.put(
        f"/wiki/api/v2/pages/{page.ext_id}",
        json={
            "id": str(page.ext_id),
            "status": "current",
            "title": "Onboarding Guide",
            "body": {"representation": "storage", "value": "<p>Updated guide</p>"},
            "version": {"number": page.version + 1, "message": "second edition"},
        },
    )
    response = browser.get(reverse("simulator-page", args=[acme.slug, page.ext_id]))
    text = response.content.decode()
    assert "&lt;p&gt;Updated guide&lt;/p&gt;" in text
    assert "&lt;h2&gt;Your first week&lt;/h2&gt;" in text  # the previous version's body
    assert "second edition" in text
    assert [v.number for v in response.context["versions"]] == [page.version]


# --- Escaping -------------------------------------------------------------------------------------


def test_planted_markup_in_summaries_comments_and_page_bodies_is_escaped(browser, acme):
    Issue.objects.filter(world=acme, key="WEB-7").update(summary=XSS)
    comment = Comment.objects.filter(world=acme, issue__key="WEB-7").first()
    comment.body = _adf(XSS)
    comment.save()
    page = Page.objects.get(world=acme, title="Onboarding Guide")
    Page.objects.filter(pk=page.pk).update(body=XSS, title=XSS)
    for url in (
        reverse("simulator-issue", args=[acme.slug, "WEB-7"]),
        reverse("simulator-board", args=[acme.slug, 1]),
        reverse("simulator-space", args=[acme.slug, "ENG"]),
        reverse("simulator-page", args=[acme.slug, page.ext_id]),
    ):
        text = browser.get(url).content.decode()
        assert "<script>alert" not in text, url
        assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text, url


def test_planted_markup_in_a_change_and_a_call_path_is_escaped(browser, acme, jira):
    jira.put(f"{V3}/issue/WEB-7", json={"fields": {"summary": XSS}})
    jira.get(f"{V3}/issue/{XSS}")
    for url in (
        reverse("simulator-issue", args=[acme.slug, "WEB-7"]),
        reverse("simulator-world", args=[acme.slug]),
    ):
        text = browser.get(url).content.decode()
        assert "<script>alert" not in text, url
        assert "&lt;script&gt;" in text, url
