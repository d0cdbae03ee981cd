"""JQL search through the three search routes."""

from tests.simulator.schemas import validate

V3, V2 = "/rest/api/3", "/rest/api/2"


def test_search_jql_pages_with_next_page_token(jira):
    jql = "project = WEB ORDER BY key ASC"
    seen, token = [], None
    while True:
        params = {"jql": jql, "maxResults": 10, "fields": "summary"}
        if token:
            params["nextPageToken"] = token
        body = jira.get(f"{V3}/search/jql", params=params).json()
        validate(body, "/rest/api/3/search/jql")
        seen += [i["key"] for i in body["issues"]]
        if body["isLast"]:
            assert "nextPageToken" not in body
            break
        token = body["nextPageToken"]
    assert len(seen) == 22 and seen[0] == "WEB-1" and len(set(seen)) == 22


def test_search_jql_gives_ids_only_by_default(jira):
    body = jira.get(f"{V3}/search/jql", params={"jql": "key = OPS-5"}).json()
    assert body["issues"] == [{"id": jira.get(f"{V3}/issue/OPS-5").json()["id"]}]


def test_search_jql_post_form(jira):
    body = jira.post(
        f"{V3}/search/jql",
        json={"jql": "project = OPS AND status = Blocked", "fields": ["summary", "status"]},
    ).json()
    assert {i["key"] for i in body["issues"]} == {"OPS-4", "OPS-15"}
    assert all(i["fields"]["status"]["name"] == "Blocked" for i in body["issues"])


def test_unbounded_query_is_refused_on_search_jql_only(jira):
    r = jira.get(f"{V3}/search/jql", params={"jql": "ORDER BY created DESC"})
    assert r.status_code == 400
    assert r.json()["errorMessages"] == [
        "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
    ]
    old = jira.get(f"{V2}/search", params={"jql": "ORDER BY created DESC", "maxResults": 5})
    assert old.status_code == 200 and old.json()["total"] >= 62


def test_old_search_pages_with_start_at_and_total(jira):
    body = jira.get(
        f"{V3}/search", params={"jql": "project = MOB ORDER BY key", "startAt": 5, "maxResults": 5}
    ).json()
    validate(body, "/rest/api/3/search")
    assert body["total"] == 20 and body["startAt"] == 5
    assert [i["key"] for i in body["issues"]] == ["MOB-6", "MOB-7", "MOB-8", "MOB-9", "MOB-10"]
    assert "summary" in body["issues"][0]["fields"]  # *navigable by default


def test_bad_jql_is_a_400_naming_the_problem(jira):
    r = jira.get(f"{V3}/search/jql", params={"jql": "project = = WEB"})
    assert r.status_code == 400
    assert r.json()["errorMessages"][0].startswith("Error in the JQL Query")
    assert r.json()["errors"] == {}


def test_approximate_count(jira):
    r = jira.post(f"{V3}/search/approximate-count", json={"jql": "project = OPS"})
    assert r.json() == {"count": 20}


def test_search_sees_writes_of_the_same_world(jira):
    jira.put(f"{V3}/issue/WEB-17", json={"update": {"labels": [{"add": "cleanup-2026"}]}})
    body = jira.get(f"{V3}/search/jql", params={"jql": "labels = cleanup-2026", "fields": "key"}).json()
    assert [i["key"] for i in body["issues"]] == ["WEB-17"]
