"""The real clients against a live server for Confluence (atlassian-python-api 5.0.5: ConfluenceV2
and the classic Confluence) and Jira agile (jira 3.10.5: boards, sprints, moving issues), reached
through the `simworld create` JSON as a script would."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

jira_client = pytest.importorskip("jira")
atlassian = pytest.importorskip("atlassian")


@pytest.fixture
def site(live_server, transactional_db):
    out = StringIO()
    host, port = live_server.url.removeprefix("http://").split(":")
    call_command("simworld", "create", "--seed", "acme", "--host", host, "--port", port, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_confluence_v2_client_workflow(site):
    wiki = atlassian.ConfluenceV2(
        url=site["confluence_url"].rstrip("/"), username=site["email"], password=site["token"]
    )
    space = wiki.get_space_by_key("ENG")
    assert space["key"] == "ENG" and wiki.get_space(space["id"])["name"] == "Engineering"
    parent = wiki.get_pages(space_id=space["id"], title="Runbooks")[0]

    page = wiki.create_page(
        space["id"], "Runbook: CDN Purge", "<p>Purge the edge cache.</p>", parent_id=parent["id"]
    )
    assert page["parentId"] == parent["id"] and page["version"]["number"] == 1

    read = wiki.get_page_by_id(page["id"], body_format="storage")
    assert read["body"]["storage"]["value"] == "<p>Purge the edge cache.</p>"
    assert wiki.get_page_by_id(page["id"], get_body=False)["body"] == {}
    (by_title,) = wiki.get_page_by_title("ENG", "Runbook: CDN Purge")["results"]
    assert (
        by_title["id"] == page["id"]
        and by_title["body"]["storage"]["value"] == "<p>Purge the edge cache.</p>"
    )

    wiki.update_page(page["id"], "Runbook: CDN Purge", "<p>Purge, then warm the cache.</p>")
    wiki.update_page(page["id"], "Runbook: CDN Purge (edge)", "<p>Purge, warm, verify.</p>")
    read = wiki.get_page_by_id(page["id"], body_format="storage")
    assert read["version"]["number"] == 3 and read["title"] == "Runbook: CDN Purge (edge)"
    assert read["body"]["storage"]["value"] == "<p>Purge, warm, verify.</p>"

    children = wiki.get_child_pages(parent["id"])
    assert [c["title"] for c in children][-1] == "Runbook: CDN Purge (edge)" and len(children) == 4
    wiki.add_page_label(page["id"], "cdn")
    wiki.delete_page(page["id"])
    assert len(wiki.get_child_pages(parent["id"])) == 3


def test_classic_confluence_client_workflow(site):
    wiki = atlassian.Confluence(
        url=site["confluence_url"].rstrip("/"), username=site["email"], password=site["token"]
    )
    assert wiki.get_space("ENG")["name"] == "Engineering"
    parent_id = wiki.get_page_id("ENG", "Runbooks")

    page = wiki.create_page(
        "ENG", "Runbook: DNS Failover", "<p>Switch the resolver.</p>", parent_id=parent_id
    )
    assert [a["id"] for a in page["ancestors"]][-1] == parent_id

    by_id = wiki.get_page_by_id(page["id"], expand="body.storage,version")
    assert by_id["body"]["storage"]["value"] == "<p>Switch the resolver.</p>"
    assert wiki.get_page_by_title("ENG", "Runbook: DNS Failover")["results"][0]["id"] == page["id"]
    assert wiki.page_exists("ENG", "Runbook: DNS Failover")

    wiki.update_page(page["id"], "Runbook: DNS Failover", "<p>Switch the resolver, then flush.</p>")
    wiki.update_page(page["id"], "Runbook: DNS Failover (v2)", "<p>Switch, flush, verify.</p>")
    by_id = wiki.get_page_by_id(page["id"], expand="body.storage,version")
    assert by_id["version"]["number"] == 3 and by_id["title"] == "Runbook: DNS Failover (v2)"
    assert by_id["body"]["storage"]["value"] == "<p>Switch, flush, verify.</p>"

    children = list(wiki.get_page_child_by_type(parent_id, type="page"))
    assert "Runbook: DNS Failover (v2)" in [c["title"] for c in children] and len(children) == 4
    wiki.set_page_label(page["id"], "dns")
    assert [label["name"] for label in wiki.get_page_labels(page["id"])["results"]] == ["dns"]


def test_the_two_confluence_clients_share_one_store(site):
    classic = atlassian.Confluence(
        url=site["confluence_url"].rstrip("/"), username=site["email"], password=site["token"]
    )
    v2 = atlassian.ConfluenceV2(
        url=site["confluence_url"].rstrip("/"), username=site["email"], password=site["token"]
    )
    page = classic.create_page("PROD", "Pricing Experiments", "<p>A/B tests.</p>")
    v2.update_page(page["id"], "Pricing Experiments", "<p>A/B tests, by region.</p>")
    again = classic.get_page_by_id(page["id"], expand="body.storage,version")
    assert (
        again["version"]["number"] == 2
        and again["body"]["storage"]["value"] == "<p>A/B tests, by region.</p>"
    )


def test_jira_package_boards_and_sprints(site):
    jira = jira_client.JIRA(
        site["base_url"].rstrip("/"), basic_auth=(site["email"], site["token"]), max_retries=0
    )
    boards = jira.boards(projectKeyOrID="WEB")
    assert [b.name for b in boards] == ["WEB board"]
    sprints = jira.sprints(boards[0].id)
    assert [(s.name, s.state) for s in sprints] == [
        ("WEB Sprint 11", "closed"),
        ("WEB Sprint 12", "active"),
        ("WEB Sprint 13", "future"),
    ]
    assert [s.name for s in jira.sprints(boards[0].id, state="active")] == ["WEB Sprint 12"]
    new = jira.create_sprint("WEB Sprint 14", boards[0].id, goal="Order tracking")
    assert new.state == "future" and jira.sprint(new.id).goal == "Order tracking"

    jira.add_issues_to_sprint(new.id, ["WEB-16", "WEB-7"])
    sprint_field = jira.issue("WEB-7").fields.customfield_10020
    assert [s.id for s in sprint_field] == [new.id]
    found = jira.search_issues(f"sprint = {new.id} ORDER BY key", maxResults=False)
    assert [i.key for i in found] == ["WEB-7", "WEB-16"]


def test_atlassian_jira_client_agile_calls(site):
    jira = atlassian.Jira(
        url=site["base_url"].rstrip("/"), username=site["email"], password=site["token"], cloud=True
    )
    board = jira.get_all_agile_boards(project_key="WEB")["values"][0]
    active = jira.get_all_sprints_from_board(board["id"], state="active")["values"][0]
    assert jira.get_sprint(active["id"])["name"] == "WEB Sprint 12"
    jira.add_issues_to_sprint(active["id"], ["WEB-18"])
    assert (
        jira.get_issue("WEB-18", fields="customfield_10020")["fields"]["customfield_10020"][0]["id"]
        == active["id"]
    )


def test_the_classic_client_lists_spaces_and_searches_with_cql(site):
    wiki = atlassian.Confluence(
        url=site["confluence_url"].rstrip("/"), username=site["email"], password=site["token"]
    )
    assert [s["key"] for s in wiki.get_all_spaces(start=0, limit=50)["results"]] == ["ENG", "PROD"]
    found = wiki.cql('space = ENG AND label = postmortem AND text ~ "connection pool"')
    assert [r["content"]["title"] for r in found["results"]] == ["Postmortem: Checkout Outage 2025-11-28"]
