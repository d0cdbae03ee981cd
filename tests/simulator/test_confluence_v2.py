"""Confluence v2 (/wiki/api/v2) through the in-process door: spaces, pages (create, read, update,
delete), the tree around a page, versions and labels; cursor paging; errors in the v2 shape;
responses checked against the official Confluence v2 response schemas."""

import functools
import json
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.simulator import schemas

V2 = "/wiki/api/v2"


@functools.cache
def _confluence_document():
    path = schemas.REFERENCE / "confluence-v2.openapi.json"
    if not path.exists():
        pytest.skip(f"Atlassian's OpenAPI documents are not at {schemas.REFERENCE}")
    return schemas._json_schema(json.loads(path.read_text()))


def validate_v2(body, path, method="get", status="200"):
    """Raise unless ``body`` fits the response schema of the v2 operation at ``path``."""
    document = _confluence_document()
    registry = Registry().with_resource("urn:confluence", Resource.from_contents(document, DRAFT202012))
    operation = document["paths"][path][method]
    schema = schemas._rebase(
        operation["responses"][status]["content"]["application/json"]["schema"], "confluence"
    )
    jsonschema.Draft202012Validator(schema, registry=registry).validate(body)


def space_id(client, key="ENG"):
    return client.get(f"{V2}/spaces", params={"keys": key}).json()["results"][0]["id"]


def page_id(client, title, key="ENG"):
    found = client.get(f"{V2}/pages", params={"space-id": space_id(client, key), "title": title}).json()
    return found["results"][0]["id"]


def create(client, title, key="ENG", **extra):
    body = {"spaceId": space_id(client, key), "status": "current", "title": title, **extra}
    body.setdefault("body", {"storage": {"value": f"<p>{title}</p>"}})
    return client.post(f"{V2}/pages", json=body)


def assert_v2_error(response, status, title=None):
    assert response.status_code == status
    (error,) = response.json()["errors"]
    assert error["status"] == status and error["code"] and "detail" in error
    if title is not None:
        assert error["title"] == title


def page_changes(world, ref):
    from simulator.models import Change

    rows = Change.objects.filter(world=world, object_type="page", object_ref=str(ref))
    return list(rows.values_list("action", "field", "before", "after"))


# --- Spaces ---------------------------------------------------------------------------------------


def test_spaces_list_fits_the_schema(jira):
    r = jira.get(f"{V2}/spaces")
    assert r.status_code == 200
    validate_v2(r.json(), "/spaces")
    assert [s["key"] for s in r.json()["results"]] == ["ENG", "PROD"]
    assert r.json()["_links"] == {"base": f"http://127.0.0.1:8000/sim/{jira.world.slug}/wiki"}
    eng = r.json()["results"][0]
    assert eng["homepageId"].isdigit() and eng["_links"]["webui"] == "/spaces/ENG"


def test_spaces_filter_by_keys_ids_type_status(jira):
    eng = space_id(jira)
    assert [s["key"] for s in jira.get(f"{V2}/spaces", params={"ids": [eng]}).json()["results"]] == ["ENG"]
    assert len(jira.get(f"{V2}/spaces", params={"keys": ["ENG", "PROD"]}).json()["results"]) == 2
    assert jira.get(f"{V2}/spaces", params={"type": "personal"}).json()["results"] == []
    assert len(jira.get(f"{V2}/spaces", params={"status": "current"}).json()["results"]) == 2
    assert_v2_error(jira.get(f"{V2}/spaces", params={"ids": "ENG"}), 400)


def test_spaces_cursor_paging_with_link_header(jira):
    first = jira.get(f"{V2}/spaces", params={"limit": 1})
    nxt = first.json()["_links"]["next"]
    assert nxt.startswith("/wiki/api/v2/spaces?") and "cursor=" in nxt and "limit=1" in nxt
    assert first.headers["Link"].startswith(f'<{nxt}>; rel="next"')
    second = jira.get(nxt)
    assert [s["key"] for s in second.json()["results"]] == ["PROD"]
    assert "next" not in second.json()["_links"] and "Link" not in second.headers


def test_space_by_id_and_its_pages(jira):
    eng = space_id(jira)
    r = jira.get(f"{V2}/spaces/{eng}", params={"description-format": "plain"})
    validate_v2(r.json(), "/spaces/{id}")
    assert r.json()["description"]["plain"]["value"].startswith("How Acme")
    roots = jira.get(f"{V2}/spaces/{eng}/pages", params={"depth": "root"}).json()["results"]
    assert [p["title"] for p in roots] == ["Engineering Home"]
    every = jira.get(f"{V2}/spaces/{eng}/pages", params={"limit": 250})
    validate_v2(every.json(), "/spaces/{id}/pages")
    assert len(every.json()["results"]) == 16
    assert_v2_error(jira.get(f"{V2}/spaces/99999"), 404, "Space not found")
    assert_v2_error(jira.get(f"{V2}/spaces/ENG"), 400)


# --- Reading pages --------------------------------------------------------------------------------


def test_get_page_gives_the_body_only_when_asked(jira):
    pid = page_id(jira, "Runbooks")
    bare = jira.get(f"{V2}/pages/{pid}")
    assert bare.status_code == 200 and bare.json()["body"] == {}
    validate_v2(bare.json(), "/pages/{id}")
    assert jira.get(f"{V2}/pages/{pid}", params={"body-format": "none"}).json()["body"] == {}
    full = jira.get(f"{V2}/pages/{pid}", params={"body-format": "storage"}).json()
    assert full["body"]["storage"] == {
        "representation": "storage",
        "value": "<p>Step-by-step guides for incidents. Keep them short and test them.</p>",
    }
    adf = jira.get(f"{V2}/pages/{pid}", params={"body-format": "atlas_doc_format"}).json()
    assert json.loads(adf["body"]["atlas_doc_format"]["value"])["type"] == "doc"
    assert_v2_error(jira.get(f"{V2}/pages/{pid}", params={"body-format": "pdf"}), 400)


def test_get_page_version_and_links(jira):
    pid = page_id(jira, "Runbooks")
    page = jira.get(f"{V2}/pages/{pid}").json()
    assert set(page["version"]) == {"number", "message", "minorEdit", "authorId", "createdAt"}
    assert page["version"]["number"] == 1 and page["version"]["createdAt"].endswith("Z")
    assert page["parentId"] == page_id(jira, "Engineering Home") and page["parentType"] == "page"
    assert page["_links"]["webui"] == f"/spaces/ENG/pages/{pid}/Runbooks"
    assert page["_links"]["editui"] == f"/pages/resumedraft.action?draftId={pid}"
    assert page["_links"]["tinyui"].startswith("/x/")
    assert page["_links"]["base"] == f"http://127.0.0.1:8000/sim/{jira.world.slug}/wiki"


def test_missing_page_is_a_v2_404(jira):
    assert_v2_error(jira.get(f"{V2}/pages/123456789"), 404, "Page not found")
    assert_v2_error(jira.get(f"{V2}/pages/abc"), 400)


def test_pages_list_by_space_title_status_and_sort(jira):
    eng = space_id(jira)
    r = jira.get(
        f"{V2}/pages",
        params={"space-id": eng, "title": "Runbooks", "status": "current", "body-format": "storage"},
    )
    validate_v2(r.json(), "/pages")
    (page,) = r.json()["results"]
    assert page["title"] == "Runbooks" and page["body"]["storage"]["value"].startswith("<p>Step")
    assert jira.get(f"{V2}/pages", params={"space-id": eng, "title": "runbooks"}).json()["results"] == []
    titles = [
        p["title"]
        for p in jira.get(f"{V2}/pages", params={"space-id": eng, "sort": "-title", "limit": 3}).json()[
            "results"
        ]
    ]
    assert titles == sorted(titles, reverse=True)
    assert_v2_error(jira.get(f"{V2}/pages", params={"sort": "size"}), 400)
    assert_v2_error(jira.get(f"{V2}/pages", params={"status": "lost"}), 400)


def test_pages_list_takes_repeated_ids_and_spaces(jira):
    ids = [page_id(jira, "Runbooks"), page_id(jira, "Roadmap 2026", "PROD")]
    got = jira.get(f"{V2}/pages", params={"id": ids}).json()["results"]
    assert sorted(p["id"] for p in got) == sorted(ids)
    both = jira.get(
        f"{V2}/pages", params={"space-id": [space_id(jira), space_id(jira, "PROD")], "limit": 250}
    )
    assert len(both.json()["results"]) == 26


def test_cursor_paging_walks_more_than_25_pages_once_each(jira):
    for n in range(30):
        assert create(jira, f"Load test page {n:02d}").status_code == 200
    eng = space_id(jira)
    first = jira.get(f"{V2}/pages", params={"space-id": eng})
    assert len(first.json()["results"]) == 25  # the default limit
    seen, url, pages = [], f"{V2}/pages?space-id={eng}&limit=7&sort=-created-date", 0
    while url:
        body = jira.get(url).json()
        seen.extend(p["id"] for p in body["results"])
        url = body["_links"].get("next")
        pages += 1
    assert len(seen) == len(set(seen)) == 46 and pages == 7
    created_at = [
        p["createdAt"] for p in jira.get(f"{V2}/pages", params={"id": seen, "limit": 250}).json()["results"]
    ]
    assert len(created_at) == 46


def test_a_cursor_keeps_the_other_parameters(jira):
    eng = space_id(jira)
    body = jira.get(f"{V2}/pages", params={"space-id": eng, "limit": 2, "body-format": "storage"}).json()
    query = parse_qs(urlsplit(body["_links"]["next"]).query)
    assert query["space-id"] == [eng] and query["limit"] == ["2"] and query["body-format"] == ["storage"]
    assert_v2_error(jira.get(f"{V2}/pages", params={"cursor": "not-a-cursor"}), 400)


def test_page_lists_cost_a_fixed_number_of_queries(jira, django_assert_max_num_queries):
    eng = space_id(jira)
    jira.get(f"{V2}/pages", params={"limit": 1})  # warm the world's config cache
    with django_assert_max_num_queries(10) as few:
        jira.get(f"{V2}/pages", params={"space-id": eng, "limit": 2, "body-format": "storage"})
    with django_assert_max_num_queries(len(few.captured_queries)):
        jira.get(f"{V2}/pages", params={"space-id": eng, "limit": 250, "body-format": "storage"})


# --- Creating pages -------------------------------------------------------------------------------


def test_create_with_the_nested_body_lands_under_the_homepage(jira):
    r = create(jira, "Release Checklist", body={"storage": {"value": "<p>Tag, build, ship.</p>"}})
    assert r.status_code == 200
    page = r.json()
    validate_v2(page, "/pages", "post")
    assert page["parentId"] == page_id(jira, "Engineering Home")
    assert page["version"]["number"] == 1 and page["status"] == "current"
    assert page["body"]["storage"]["value"] == "<p>Tag, build, ship.</p>"
    assert page["authorId"] == jira.user.account_id
    stored = jira.get(f"{V2}/pages/{page['id']}", params={"body-format": "storage"}).json()
    assert stored["body"]["storage"]["value"] == "<p>Tag, build, ship.</p>"


def test_create_with_the_flat_body_under_a_parent(jira):
    parent = page_id(jira, "Runbooks")
    r = create(
        jira,
        "Runbook: Cache Flush",
        parentId=parent,
        body={"representation": "storage", "value": "<p>Flush it.</p>"},
    )
    assert r.status_code == 200 and r.json()["parentId"] == parent
    assert r.json()["position"] == 3  # after the three runbooks already there


def test_create_root_level_and_draft_without_title(jira):
    r = jira.post(
        f"{V2}/pages",
        params={"root-level": "True"},
        json={"spaceId": space_id(jira), "title": "Team Calendar", "body": {"storage": {"value": ""}}},
    )
    assert r.status_code == 200 and "parentId" not in r.json()
    draft = jira.post(f"{V2}/pages", json={"spaceId": space_id(jira), "status": "draft"})
    assert draft.status_code == 200 and draft.json()["status"] == "draft"


def test_create_refusals(jira):
    eng = space_id(jira)
    assert_v2_error(jira.post(f"{V2}/pages", json={"title": "x"}), 400)
    assert_v2_error(jira.post(f"{V2}/pages", json={"spaceId": "999999", "title": "x"}), 404)
    assert_v2_error(jira.post(f"{V2}/pages", json={"spaceId": eng}), 400)
    duplicate = create(jira, "Runbooks")
    assert_v2_error(
        duplicate,
        400,
        "A page with this title already exists: A page already exists with the same TITLE in this space",
    )
    assert create(jira, "Runbooks", key="PROD").status_code == 200  # unique per space only
    other_space = page_id(jira, "Roadmap 2026", "PROD")
    assert_v2_error(create(jira, "Misplaced", parentId=other_space), 400)
    assert_v2_error(create(jira, "Orphan", parentId="987654321"), 400)
    r = jira.post(
        f"{V2}/pages",
        params={"root-level": "true"},
        json={"spaceId": eng, "title": "Both", "parentId": page_id(jira, "Runbooks")},
    )
    assert_v2_error(r, 400)
    assert_v2_error(create(jira, "Odd body", body={"representation": "pdf", "value": "x"}), 400)
    assert_v2_error(create(jira, "No value", body={"storage": {"representation": "storage"}}), 400)
    assert_v2_error(jira.post(f"{V2}/pages", json=["not", "an", "object"]), 400)


def test_create_records_the_page_in_the_change_log(jira):
    page = create(jira, "Release Checklist").json()
    rows = page_changes(jira.world, page["id"])
    assert rows[0] == ("create", "", None, None)
    assert ("create", "title", None, "Release Checklist") in rows
    assert ("create", "space", None, "ENG") in rows
    assert ("create", "parent", None, page_id(jira, "Engineering Home")) in rows


# --- Updating pages -------------------------------------------------------------------------------


def test_update_without_status_keeps_it_and_keeps_the_old_version(jira):
    pid = page_id(jira, "Coding Standards")
    r = jira.put(
        f"{V2}/pages/{pid}",
        json={
            "id": pid,
            "title": "Coding Standards",
            "body": {"storage": {"value": "<p>v2</p>"}},
            "version": {"number": 2, "message": "tighter"},
        },
    )
    assert r.status_code == 200
    validate_v2(r.json(), "/pages/{id}", "put")
    assert r.json()["status"] == "current" and r.json()["version"]["number"] == 2
    assert r.json()["version"]["message"] == "tighter"
    versions = jira.get(f"{V2}/pages/{pid}/versions").json()
    validate_v2(versions, "/pages/{id}/versions")
    assert [v["number"] for v in versions["results"]] == [2, 1]
    old = jira.get(f"{V2}/pages/{pid}", params={"version": 1, "body-format": "storage"}).json()
    assert old["body"]["storage"]["value"].startswith("<p>Write tests first")
    assert (
        "update",
        "body",
        "<p>Write tests first for bug fixes. Keep pull requests under 400 lines.</p>",
        "<p>v2</p>",
    ) in page_changes(jira.world, pid)
    assert ("update", "version", 1, 2) in page_changes(jira.world, pid)


def test_stale_or_skipped_versions_conflict(jira):
    pid = page_id(jira, "Coding Standards")
    for number in (1, 3):
        r = jira.put(f"{V2}/pages/{pid}", json={"id": pid, "title": "x", "version": {"number": number}})
        assert_v2_error(
            r,
            409,
            "Version must be incremented when updating a page. "
            f"Current Version: [1]. Provided version: [{number}]",
        )
    assert r.json()["errors"][0]["code"] == "CONFLICT"
    assert_v2_error(jira.put(f"{V2}/pages/{pid}", json={"id": pid, "title": "x"}), 400)
    assert jira.get(f"{V2}/pages/{pid}").json()["title"] == "Coding Standards"


def test_update_moves_a_page_with_parent_id(jira):
    pid, new_parent = page_id(jira, "Coding Standards"), page_id(jira, "Onboarding Guide")
    r = jira.put(
        f"{V2}/pages/{pid}",
        json={"id": pid, "title": "Coding Standards", "parentId": new_parent, "version": {"number": 2}},
    )
    assert r.json()["parentId"] == new_parent
    ancestors = jira.get(f"{V2}/pages/{pid}/ancestors").json()["results"]
    assert [a["id"] for a in ancestors] == [page_id(jira, "Engineering Home"), new_parent]
    below_itself = jira.put(
        f"{V2}/pages/{new_parent}",
        json={"id": new_parent, "title": "Onboarding Guide", "parentId": pid, "version": {"number": 2}},
    )
    assert_v2_error(below_itself, 400)


def test_update_refuses_a_taken_title_and_a_foreign_parent(jira):
    pid = page_id(jira, "Coding Standards")
    assert_v2_error(
        jira.put(f"{V2}/pages/{pid}", json={"id": pid, "title": "Runbooks", "version": {"number": 2}}), 400
    )
    foreign = page_id(jira, "Roadmap 2026", "PROD")
    assert_v2_error(
        jira.put(
            f"{V2}/pages/{pid}", json={"id": pid, "title": "x", "parentId": foreign, "version": {"number": 2}}
        ),
        400,
    )
    assert_v2_error(
        jira.put(f"{V2}/pages/{pid}", json={"id": "1", "title": "x", "version": {"number": 2}}), 400
    )


# --- Deleting pages -------------------------------------------------------------------------------


def test_delete_trashes_then_purge_deletes(jira):
    pid = page_id(jira, "Runbooks")
    child = page_id(jira, "Runbook: Payment Outage")
    r = jira.delete(f"{V2}/pages/{pid}")
    assert r.status_code == 204 and r.text == ""
    assert_v2_error(jira.get(f"{V2}/pages/{pid}"), 404)
    assert jira.get(f"{V2}/pages/{pid}", params={"status": "trashed"}).json()["status"] == "trashed"
    assert jira.get(f"{V2}/pages/{child}").json()["parentId"] == page_id(jira, "Engineering Home")
    assert ("update", "status", "current", "trashed") in page_changes(jira.world, pid)
    assert_v2_error(jira.delete(f"{V2}/pages/{pid}"), 404)
    assert jira.delete(f"{V2}/pages/{pid}", params={"purge": "true"}).status_code == 204
    assert_v2_error(jira.get(f"{V2}/pages/{pid}", params={"status": "trashed"}), 404)
    assert page_changes(jira.world, pid)[-1][0] == "delete"


def test_purge_needs_a_trashed_page(jira):
    assert_v2_error(jira.delete(f"{V2}/pages/{page_id(jira, 'Runbooks')}", params={"purge": "true"}), 400)


def test_a_trashed_title_can_be_used_again(jira):
    jira.delete(f"{V2}/pages/{page_id(jira, 'Coding Standards')}")
    assert create(jira, "Coding Standards").status_code == 200


# --- The tree, versions, labels -------------------------------------------------------------------


def test_children_and_direct_children(jira):
    pid = page_id(jira, "Runbooks")
    children = jira.get(f"{V2}/pages/{pid}/children")
    validate_v2(children.json(), "/pages/{id}/children")
    assert [c["title"] for c in children.json()["results"]] == [
        "Runbook: Logging Cluster Disk Full",
        "Runbook: Payment Outage",
        "Runbook: Database Failover",
    ]
    assert [c["childPosition"] for c in children.json()["results"]] == [0, 1, 2]
    direct = jira.get(f"{V2}/pages/{pid}/direct-children", params={"limit": 2, "status": "current"}).json()
    assert [c["type"] for c in direct["results"]] == ["page", "page"] and "next" in direct["_links"]
    rest = jira.get(direct["_links"]["next"]).json()
    assert [c["title"] for c in rest["results"]] == ["Runbook: Database Failover"]


def test_ancestors_are_root_first(jira):
    pid = page_id(jira, "Runbook: Payment Outage")
    r = jira.get(f"{V2}/pages/{pid}/ancestors")
    validate_v2(r.json(), "/pages/{id}/ancestors")
    assert r.json()["results"] == [
        {"id": page_id(jira, "Engineering Home"), "type": "page"},
        {"id": page_id(jira, "Runbooks"), "type": "page"},
    ]
    nearest = jira.get(f"{V2}/pages/{pid}/ancestors", params={"limit": 1}).json()["results"]
    assert nearest == [{"id": page_id(jira, "Runbooks"), "type": "page"}]


def test_versions_page_with_a_cursor(jira):
    pid = page_id(jira, "Coding Standards")
    for n in (2, 3, 4):
        jira.put(f"{V2}/pages/{pid}", json={"id": pid, "title": "Coding Standards", "version": {"number": n}})
    first = jira.get(f"{V2}/pages/{pid}/versions", params={"limit": 3}).json()
    assert [v["number"] for v in first["results"]] == [4, 3, 2]
    assert [v["number"] for v in jira.get(first["_links"]["next"]).json()["results"]] == [1]


def test_labels_read_and_add(jira):
    pid = page_id(jira, "Runbooks")
    r = jira.get(f"{V2}/pages/{pid}/labels")
    validate_v2(r.json(), "/pages/{id}/labels")
    assert [label["name"] for label in r.json()["results"]] == ["on-call", "runbook"]
    added = jira.post(f"{V2}/pages/{pid}/labels", json={"name": "Incident"})
    assert added.status_code == 200 and added.json()["name"] == "incident"
    assert [label["name"] for label in jira.get(f"{V2}/pages/{pid}/labels").json()["results"]] == [
        "incident",
        "on-call",
        "runbook",
    ]
    assert ("update", "labels", ["on-call", "runbook"], ["incident", "on-call", "runbook"]) in page_changes(
        jira.world, pid
    )
    again = jira.post(f"{V2}/pages/{pid}/labels", json={"name": "incident"})
    assert again.status_code == 200 and len(page_changes(jira.world, pid)) == 1
    assert_v2_error(jira.post(f"{V2}/pages/{pid}/labels", json={"name": "two words"}), 400)
    assert_v2_error(jira.post(f"{V2}/pages/{pid}/labels", json={}), 400)


def test_writes_share_ids_and_times_with_the_world(jira):
    before = jira.world.next_ext_id
    page = create(jira, "Counter Check").json()
    assert int(page["id"]) == before
    assert page["createdAt"] == jira.world.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_page_create_reading_ahead_with_its_space_answers_as_reading_apart(acme_template, monkeypatch):
    # On PostgreSQL the space read of a page create also answers its title check and its position
    # (store.space_by_id's new_title); the answers and pages must be those of separate reads.
    from simulator.client import SimClient
    from simulator.handlers import confluence_pages
    from simulator.models import Page, Space, User
    from tests.simulator.conftest import ADA

    def play(world):
        client = SimClient(world, User.objects.get(world=world, account_id=ADA))
        space = Space.objects.get(world=world, key="ENG")
        other = Page.objects.filter(space=space).exclude(pk=space.homepage_id).order_by("ext_id").first()
        bodies = [
            {"title": "Ahead"},
            {"title": " ahead "},  # the same title, another case and spaces: refused
            {"title": "Ahead draft", "status": "draft"},
            {"title": "At the root"},
            {"title": "Under the homepage", "parentId": str(space.homepage.ext_id)},
            {"title": "Under another", "parentId": str(other.ext_id)},
            {"title": "Ahead 2"},
        ]
        answers = []
        for n, extra in enumerate(bodies):
            body = {"spaceId": str(space.ext_id), "body": {"representation": "storage", "value": "<p>x</p>"}}
            params = {"root-level": "true"} if n == 3 else None
            r = client.post("/wiki/api/v2/pages", json={**body, **extra}, params=params)
            answers.append((r.status_code, r.text.replace(world.slug, "WORLD")))
        pages = Page.objects.filter(world=world).order_by("ext_id")
        return answers, list(pages.values_list("ext_id", "title", "status", "position", "parent__ext_id"))

    ahead = play(acme_template.fork())
    read = confluence_pages.space_by_id
    monkeypatch.setattr(confluence_pages, "space_by_id", lambda req, ident, new_title=None: read(req, ident))
    apart = play(acme_template.fork())
    assert ahead == apart
    assert [status for status, _ in ahead[0]] == [200, 400, 200, 200, 200, 200, 200]
