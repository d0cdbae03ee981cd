"""The real Python clients (jira 3.10.5, atlassian-python-api 5.0.5) against a live server,
reached through the `simworld create` JSON, as a script would."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

jira_client = pytest.importorskip("jira")
atlassian = pytest.importorskip("atlassian")


@pytest.fixture
def site(live_server):
    out = StringIO()
    host, port = live_server.url.removeprefix("http://").split(":")
    call_command("simworld", "create", "--seed", "acme", "--host", host, "--port", port, "--json", stdout=out)
    data = json.loads(out.getvalue())
    data["site"] = data["base_url"].rstrip("/")
    return data


def test_jira_package_workflow(site):
    jira = jira_client.JIRA(site["site"], basic_auth=(site["email"], site["token"]), max_retries=0)
    assert jira.myself()["emailAddress"] == site["email"]
    issue = jira.create_issue(
        fields={
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "summary": "Renew the wildcard certificate",
            "description": "Expires in two weeks.",
            "priority": {"name": "High"},
            "labels": ["tls"],
        }
    )
    assert issue.key == "OPS-21" and issue.fields.priority.name == "High"
    issue.update(summary="Renew the wildcard TLS certificate", labels=[{"add": "security"}])
    issue = jira.issue(issue.key)
    assert issue.fields.summary == "Renew the wildcard TLS certificate"
    assert issue.fields.labels == ["tls", "security"]

    found = jira.search_issues("project = OPS ORDER BY key", maxResults=False)
    assert len(found) == 21

    by_name = {t["name"]: t["id"] for t in jira.transitions(issue)}
    jira.transition_issue(issue, by_name["Start Work"])
    jira.transition_issue(issue, "Request Review")
    assert jira.issue(issue.key).fields.status.name == "In Review"

    jira.assign_issue(issue, "grace@acme.test")
    assert jira.issue(issue.key).fields.assignee.displayName == "Grace Hopper"
    comment = jira.add_comment(issue, "Ordered from the CA.")
    assert jira.comments(issue)[0].body == "Ordered from the CA." and comment.id
    jira.create_issue_link("Blocks", issue.key, "OPS-7")
    links = jira.issue(issue.key).fields.issuelinks
    assert links[0].outwardIssue.key == "OPS-7"

    issue.delete()
    assert len(jira.search_issues("project = OPS", maxResults=False)) == 20


def test_atlassian_python_api_jira_workflow(site):
    jira = atlassian.Jira(site["site"], username=site["email"], password=site["token"], cloud=True)
    created = jira.issue_create(
        fields={"project": {"key": "MOB"}, "issuetype": {"name": "Bug"}, "summary": "Crash on logout"}
    )
    key = created["key"]
    assert jira.get_issue(key)["fields"]["status"]["name"] == "Open"
    jira.issue_update(key, fields={"summary": "Crash on logout (Android)"})
    assert jira.issue(key)["fields"]["summary"] == "Crash on logout (Android)"
    assert jira.issue_exists(key) and not jira.issue_exists("MOB-999")
    result = jira.jql("project = MOB AND summary ~ logout")
    assert [i["key"] for i in result["issues"]] == [key]
    jira.set_issue_status(key, "In Progress")
    assert jira.get_issue_status(key) == "In Progress"
    jira.issue_add_comment(key, "Seen on Pixel 8.")
    assert jira.issue_get_comments(key)["total"] == 1
    jira.delete_issue(key)
    assert not jira.issue_exists(key)


def test_a_wrong_token_is_refused_by_the_jira_package(site):
    with pytest.raises(jira_client.JIRAError) as err:
        jira_client.JIRA(site["site"], basic_auth=(site["email"], "wrong"), max_retries=0)
    assert err.value.status_code == 401


def test_the_jira_package_ranks_issues_and_reads_their_history(site):
    jira = jira_client.JIRA(site["site"], basic_auth=(site["email"], site["token"]), max_retries=0)
    jira.rank("WEB-5", next_issue="WEB-2")
    board = [i.key for i in jira.search_issues("project = WEB ORDER BY rank", maxResults=False)]
    assert board.index("WEB-5") == board.index("WEB-2") - 1
    jira.issue("WEB-5").update(labels=[{"add": "ranked"}])
    histories = jira.issue("WEB-5", expand="changelog").changelog.histories
    assert [item.field for history in histories for item in history.items] == ["rank", "labels"]
