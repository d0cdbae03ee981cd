"""The classic Confluence v1 content API (/wiki/rest/api) through the in-process door, and v1
and v2 over one page store; errors in the v1 shape."""

import pytest

V1, V2 = "/wiki/rest/api", "/wiki/api/v2"


def page_id(client, title, key="ENG"):
    found = client.get(f"{V1}/content", params={"spaceKey": key, "title": title, "type": "page"}).json()
    return found["results"][0]["id"]


def create(client, title, key="ENG", parent=None, value=None):
    body = {
        "type": "page",
        "title": title,
        "status": "current",
        "space": {"key": key},
        "body": {
            "storage": {"value": f"<p>{title}</p>" if value is None else value, "representation": "storage"}
        },
        "metadata": {"properties": {"content-appearance-published": {"value": "full-width"}}},
    }
    if parent:
        body["ancestors"] = [{"type": "page", "id": parent}]
    return client.post(f"{V1}/content", json=body)


def update(client, pid, number, title, value="<p>new</p>", **extra):
    body = {
        "id": pid,
        "type": "page",
        "title": title,
        "version": {"number": number, "minorEdit": False},
        "body": {"storage": {"value": value, "representation": "storage"}},
        **extra,
    }
    return client.put(f"{V1}/content/{pid}", params={"status": "current"}, json=body)


def assert_v1_error(response, status, message=None):
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == status and body["data"]["successful"] is False and body["reason"]
    if message is not None:
        assert body["message"] == message


@pytest.fixture
def prefix(jira):
    return f"/sim/{jira.world.slug}/wiki"


# --- Spaces ---------------------------------------------------------------------------------------


def test_space_by_key_with_expansions(jira):
    r = jira.get(f"{V1}/space/ENG", params={"expand": "description.plain,homepage"})
    assert r.status_code == 200
    space = r.json()
    assert isinstance(space["id"], int) and space["key"] == "ENG" and space["name"] == "Engineering"
    assert space["description"]["plain"]["value"].startswith("How Acme")
    assert space["homepage"]["title"] == "Engineering Home"
    assert "description" not in jira.get(f"{V1}/space/ENG").json()
    assert_v1_error(jira.get(f"{V1}/space/NOPE"), 404, "No space with key : NOPE")


# --- Content --------------------------------------------------------------------------------------


def test_create_under_a_parent_answers_the_expanded_page(jira):
    parent = page_id(jira, "Runbooks")
    r = create(jira, "Runbook: CDN Purge", parent=parent)
    assert r.status_code == 200
    page = r.json()
    assert page["type"] == "page" and page["status"] == "current" and page["id"].isdigit()
    assert page["body"]["storage"]["value"] == "<p>Runbook: CDN Purge</p>"
    assert page["version"]["number"] == 1 and page["space"]["key"] == "ENG"
    assert [a["title"] for a in page["ancestors"]] == ["Engineering Home", "Runbooks"]
    assert page["_links"]["self"].endswith(f"/wiki/rest/api/content/{page['id']}")


def test_create_without_ancestors_is_a_root_page(jira):
    page = create(jira, "Loose Notes").json()
    assert page["ancestors"] == []
    assert "parentId" not in jira.get(f"{V2}/pages/{page['id']}").json()


def test_create_refusals(jira):
    assert_v1_error(create(jira, "Runbooks"), 400)
    assert create(jira, "Runbooks", key="PROD").status_code == 200
    assert_v1_error(create(jira, "Lost", key="NOPE"), 404)
    assert_v1_error(create(jira, "Far", parent=page_id(jira, "Roadmap 2026", "PROD")), 400)
    r = jira.post(f"{V1}/content", json={"type": "blogpost", "title": "x", "space": {"key": "ENG"}})
    assert_v1_error(r, 400)
    assert_v1_error(jira.post(f"{V1}/content", json={"type": "page", "space": {"key": "ENG"}}), 400)
    r = jira.post(
        f"{V1}/content",
        json={"type": "page", "title": "x", "space": {"key": "ENG"}, "body": {"storage": "<p>x</p>"}},
    )
    assert_v1_error(r, 400)


def test_get_by_space_key_and_title(jira):
    r = jira.get(f"{V1}/content", params={"spaceKey": "ENG", "title": "Runbooks", "type": "page"})
    assert r.status_code == 200
    body = r.json()
    assert body["size"] == 1 and body["start"] == 0 and body["limit"] == 25
    assert body["results"][0]["title"] == "Runbooks"
    assert jira.get(f"{V1}/content", params={"spaceKey": "ENG", "title": "Nope"}).json()["results"] == []
    assert jira.get(f"{V1}/content", params={"spaceKey": "ENG", "type": "blogpost"}).json()["results"] == []


def test_content_list_next_link_carries_the_mount(jira, prefix):
    body = jira.get(f"{V1}/content", params={"spaceKey": "ENG", "limit": 5, "expand": "version"}).json()
    nxt = body["_links"]["next"]
    assert nxt.startswith(f"{prefix}/rest/api/content?") and "start=5" in nxt and "limit=5" in nxt
    assert "spaceKey=ENG" in nxt and body["results"][0]["version"]["number"] == 1
    seen = [p["id"] for p in body["results"]]
    while "next" in body["_links"]:
        body = jira.get(body["_links"]["next"]).json()  # SimClient takes the mount-prefixed path
        seen.extend(p["id"] for p in body["results"])
    assert len(seen) == len(set(seen)) == 16


def test_get_by_id_with_every_expansion(jira):
    pid = page_id(jira, "Runbook: Payment Outage")
    r = jira.get(f"{V1}/content/{pid}", params={"expand": "body.storage,version,ancestors,space,history"})
    page = r.json()
    assert isinstance(page["body"]["storage"]["value"], str)
    assert page["body"]["storage"]["representation"] == "storage"
    assert page["version"]["number"] == 1 and page["version"]["by"]["accountId"]
    assert [a["title"] for a in page["ancestors"]] == ["Engineering Home", "Runbooks"]
    assert page["space"]["key"] == "ENG"
    assert page["history"]["createdBy"]["displayName"] and page["history"]["createdDate"].endswith("Z")
    bare = jira.get(f"{V1}/content/{pid}").json()
    assert "body" not in bare and "version" in bare and "ancestors" not in bare


def test_an_empty_body_is_still_a_string(jira):
    pid = create(jira, "Empty Page", value="").json()["id"]
    page = jira.get(f"{V1}/content/{pid}", params={"expand": "body.storage"}).json()
    assert page["body"]["storage"]["value"] == ""


def test_missing_content_is_a_v1_404(jira):
    assert_v1_error(jira.get(f"{V1}/content/424242"), 404, "No content found with id: ContentId{id=424242}")


def test_update_needs_the_next_version(jira):
    pid = page_id(jira, "Coding Standards")
    assert_v1_error(
        update(jira, pid, 1, "Coding Standards"),
        409,
        "Version must be incremented on update. Current version is: 1",
    )
    assert_v1_error(update(jira, pid, 5, "Coding Standards"), 409)
    r = jira.put(f"{V1}/content/{pid}", json={"type": "page", "title": "Coding Standards"})
    assert_v1_error(r, 400)
    ok = update(jira, pid, 2, "Coding Standards", "<p>second</p>")
    assert ok.status_code == 200 and ok.json()["version"]["number"] == 2
    assert ok.json()["body"]["storage"]["value"] == "<p>second</p>"
    assert jira.get(f"{V1}/content/{pid}/history").json()["lastUpdated"]["number"] == 2
    assert_v1_error(
        update(jira, pid, 2, "Coding Standards"),
        409,
        "Version must be incremented on update. Current version is: 2",
    )


def test_update_with_ancestors_moves_the_page(jira):
    pid, parent = page_id(jira, "Coding Standards"), page_id(jira, "Onboarding Guide")
    r = update(jira, pid, 2, "Coding Standards", ancestors=[{"id": parent}])
    assert [a["title"] for a in r.json()["ancestors"]] == ["Engineering Home", "Onboarding Guide"]
    assert jira.get(f"{V2}/pages/{pid}").json()["parentId"] == parent
    assert_v1_error(update(jira, parent, 2, "Onboarding Guide", ancestors=[{"id": pid}]), 400)


def test_history(jira):
    pid = page_id(jira, "Runbooks")
    history = jira.get(f"{V1}/content/{pid}/history").json()
    assert history["latest"] is True and history["lastUpdated"]["number"] == 1
    assert history["createdBy"]["type"] == "known" and history["createdDate"]


def test_child_pages_paged(jira, prefix):
    pid = page_id(jira, "Runbooks")
    first = jira.get(f"{V1}/content/{pid}/child/page", params={"limit": 2}).json()
    assert [c["title"] for c in first["results"]] == [
        "Runbook: Logging Cluster Disk Full",
        "Runbook: Payment Outage",
    ]
    assert first["_links"]["next"].startswith(f"{prefix}/rest/api/content/{pid}/child/page?")
    rest = jira.get(first["_links"]["next"]).json()
    assert [c["title"] for c in rest["results"]] == ["Runbook: Database Failover"] and "next" not in rest[
        "_links"
    ]
    assert jira.get(f"{V1}/content/{pid}/child/page", params={"start": 1}).json()["size"] == 2


def test_labels_as_a_list_or_one_object(jira):
    pid = page_id(jira, "Runbooks")
    r = jira.post(
        f"{V1}/content/{pid}/label",
        json=[{"prefix": "global", "name": "sre"}, {"prefix": "global", "name": "ops"}],
    )
    assert r.status_code == 200
    assert [label["name"] for label in r.json()["results"]] == ["on-call", "ops", "runbook", "sre"]
    one = jira.post(f"{V1}/content/{pid}/label", json={"prefix": "global", "name": "pager"})
    assert "pager" in [label["name"] for label in one.json()["results"]]
    listed = jira.get(f"{V1}/content/{pid}/label").json()
    assert listed["size"] == 5 and listed["results"][0] == {
        "prefix": "global",
        "name": "on-call",
        "id": listed["results"][0]["id"],
        "label": "on-call",
    }
    assert_v1_error(jira.post(f"{V1}/content/{pid}/label", json={"prefix": "secret", "name": "x"}), 400)


def test_delete_trashes_and_status_trashed_purges(jira):
    pid = page_id(jira, "Coding Standards")
    assert jira.delete(f"{V1}/content/{pid}").status_code == 204
    assert_v1_error(jira.get(f"{V1}/content/{pid}"), 404)
    assert jira.get(f"{V1}/content/{pid}", params={"status": "trashed"}).json()["status"] == "trashed"
    assert jira.delete(f"{V1}/content/{pid}", params={"status": "trashed"}).status_code == 204
    assert_v1_error(jira.get(f"{V1}/content/{pid}", params={"status": "trashed"}), 404)


# --- One store behind both APIs -------------------------------------------------------------------


def test_v1_and_v2_share_pages_ids_versions_and_trees(jira):
    parent = page_id(jira, "Runbooks")
    made = create(jira, "Runbook: Queue Backlog", parent=parent).json()
    v2 = jira.get(f"{V2}/pages/{made['id']}", params={"body-format": "storage"}).json()
    assert v2["parentId"] == parent and v2["body"]["storage"]["value"] == "<p>Runbook: Queue Backlog</p>"
    r = jira.put(
        f"{V2}/pages/{made['id']}",
        json={
            "id": made["id"],
            "title": "Runbook: Queue Backlog",
            "version": {"number": 2},
            "body": {"storage": {"value": "<p>v2 edit</p>"}},
        },
    )
    assert r.status_code == 200
    v1 = jira.get(f"{V1}/content/{made['id']}", params={"expand": "body.storage,version,ancestors"}).json()
    assert v1["version"]["number"] == 2 and v1["body"]["storage"]["value"] == "<p>v2 edit</p>"
    v2_ancestors = [a["id"] for a in jira.get(f"{V2}/pages/{made['id']}/ancestors").json()["results"]]
    assert [a["id"] for a in v1["ancestors"]] == v2_ancestors
    assert update(jira, made["id"], 3, "Runbook: Queue Backlog").status_code == 200
    assert jira.get(f"{V2}/pages/{made['id']}").json()["version"]["number"] == 3
    # A v2 label shows in v1, and the other way round.
    jira.post(f"{V2}/pages/{made['id']}/labels", json={"name": "queues"})
    jira.post(f"{V1}/content/{made['id']}/label", json=[{"prefix": "global", "name": "kafka"}])
    names = [label["name"] for label in jira.get(f"{V2}/pages/{made['id']}/labels").json()["results"]]
    assert names == ["kafka", "queues"]


def test_v1_writes_are_in_the_change_log(jira):
    from simulator.models import Change

    pid = page_id(jira, "Coding Standards")
    update(jira, pid, 2, "Code Standards", "<p>x</p>")
    rows = set(
        Change.objects.filter(world=jira.world, object_ref=pid).values_list(
            "action", "field", "before", "after"
        )
    )
    assert ("update", "title", "Coding Standards", "Code Standards") in rows
    assert ("update", "version", 1, 2) in rows


def test_content_lists_cost_a_fixed_number_of_queries(jira, django_assert_max_num_queries):
    jira.get(f"{V1}/content", params={"limit": 1, "expand": "version"})  # warm the config cache
    params = {"spaceKey": "ENG", "expand": "body.storage,version,ancestors,metadata.labels"}
    with django_assert_max_num_queries(10) as few:
        jira.get(f"{V1}/content", params={**params, "limit": 2})
    with django_assert_max_num_queries(len(few.captured_queries)):
        jira.get(f"{V1}/content", params={**params, "limit": 50})
