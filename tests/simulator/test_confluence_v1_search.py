"""Confluence v1: the space list and CQL content search (the subset of simulator.cql).

Atlassian publishes no v1 OpenAPI document beside the v2 one, so these check the v1 list shape
the classic clients read (results/start/limit/size/_links) instead of a schema."""

import pytest

from simulator.client import SimClient

V1 = "/wiki/rest/api"


@pytest.fixture
def wiki(acme, ada):
    return SimClient(acme, ada)


def titles(wiki, cql, **params):
    r = wiki.get(f"{V1}/content/search", params={"cql": cql, **params})
    assert r.status_code == 200, r.json()
    return [page["title"] for page in r.json()["results"]]


def test_the_space_list_is_offset_paged_by_key(wiki):
    body = wiki.get(f"{V1}/space", params={"limit": 1}).json()
    assert [s["key"] for s in body["results"]] == ["ENG"] and body["size"] == 1 and body["start"] == 0
    assert body["_links"]["next"].startswith(f"/sim/{wiki.world.slug}/wiki/rest/api/space?")
    rest = wiki.get(body["_links"]["next"]).json()
    assert [s["key"] for s in rest["results"]] == ["PROD"] and "next" not in rest["_links"]
    assert isinstance(rest["results"][0]["id"], int)
    only = wiki.get(f"{V1}/space", params={"spaceKey": "PROD", "expand": "description.plain"}).json()
    assert only["results"][0]["description"]["plain"]["value"].startswith("Product requirements")
    assert wiki.get(f"{V1}/space", params={"type": "nonsense"}).status_code == 400


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ('type = page AND space = PROD AND title = "Roadmap 2026"', ["Roadmap 2026"]),
        (
            "space = ENG AND label = runbook ORDER BY title",
            [
                "Runbook: Database Failover",
                "Runbook: Logging Cluster Disk Full",
                "Runbook: Payment Outage",
                "Runbooks",
            ],
        ),
        ('text ~ "connection pool"', ["Postmortem: Checkout Outage 2025-11-28"]),
        ("title ~ checkout AND space = ENG", ["Checkout Service", "Postmortem: Checkout Outage 2025-11-28"]),
        (
            "label in (tls, database) ORDER BY title DESC",
            [
                "Runbook: Database Failover",
                "Postmortem: Expired TLS Certificate 2025-10-02",
            ],
        ),
        ("type = blogpost", []),
    ],
)
def test_cql_finds_the_pages_it_names(wiki, cql, expected):
    found = titles(wiki, cql)
    assert (sorted(found) if "ORDER BY" not in cql else found) == (
        sorted(expected) if "ORDER BY" not in cql else expected
    )


def test_cql_negations_leave_out_what_they_name(wiki):
    prod = set(titles(wiki, "space = PROD", limit=100))
    kept = set(titles(wiki, 'space = PROD AND NOT title = "Product Home" AND title !~ roadmap', limit=100))
    assert kept == {t for t in prod if t != "Product Home" and "roadmap" not in t.lower()}
    assert set(titles(wiki, "space = PROD AND space != PROD")) == set()


def test_cql_parent_and_ancestor_follow_the_page_tree(wiki):
    onboarding = wiki.get(f"{V1}/content", params={"spaceKey": "ENG", "title": "Onboarding Guide"}).json()
    page_id = onboarding["results"][0]["id"]
    home = wiki.get(f"{V1}/content", params={"spaceKey": "ENG", "title": "Engineering Home"}).json()
    home_id = home["results"][0]["id"]
    assert sorted(titles(wiki, f"parent = {page_id}")) == ["Access Requests", "Development Environment Setup"]
    below_home = titles(wiki, f"ancestor = {home_id}", limit=100)
    assert "Onboarding Guide" in below_home and "Access Requests" in below_home
    assert "Engineering Home" not in below_home and "Roadmap 2026" not in below_home


def test_cql_search_pages_and_expands_like_the_other_lists(wiki):
    r = wiki.get(f"{V1}/content/search", params={"cql": "space = ENG", "limit": 2, "expand": "body.storage"})
    body = r.json()
    assert body["size"] == 2 and body["cqlQuery"] == "space = ENG" and "next" in body["_links"]
    assert body["results"][0]["body"]["storage"]["value"].startswith("<")
    second = wiki.get(body["_links"]["next"]).json()
    assert second["start"] == 2 and {p["id"] for p in second["results"]}.isdisjoint(
        {p["id"] for p in body["results"]}
    )


@pytest.mark.parametrize("cql", ["space = ", "title = (", "creator = ada", "label ~ x", "parent = abc", ""])
def test_bad_cql_is_a_v1_400(wiki, cql):
    r = wiki.get(f"{V1}/content/search", params={"cql": cql})
    assert r.status_code == 400
    body = r.json()
    assert body["statusCode"] == 400 and body["message"] and body["reason"] == "Bad Request"


def test_the_search_resource_wraps_each_page_as_a_search_result(wiki):
    r = wiki.get(f"{V1}/search", params={"cql": "space = ENG AND label = runbook", "limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert (
        body["totalSize"] == 4 and body["size"] == 2 and body["cqlQuery"] == "space = ENG AND label = runbook"
    )
    first = body["results"][0]
    assert first["entityType"] == "content" and first["content"]["type"] == "page"
    assert first["title"] == first["content"]["title"] and first["url"].startswith("/spaces/ENG/pages/")
    assert first["resultGlobalContainer"]["title"] == "Engineering" and "<" not in first["excerpt"]
    assert wiki.get(f"{V1}/search", params={"cql": "nonsense ~"}).status_code == 400
