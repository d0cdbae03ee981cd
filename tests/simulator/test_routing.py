"""The routing framework: matching, error shapes, the trace, and the two doors."""

import base64
import datetime as dt

import pytest

from simulator.client import SimClient
from simulator.models import ApiCall, User, World
from simulator.routing import Route, Router, parse_bool


@pytest.fixture
def world(db):
    w = World.objects.create(slug="tiny", seed="none", clock_start=dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC))
    User.objects.create(world=w, account_id="acc-ada", display_name="Ada Lovelace", email="ada@acme.test")
    return w


@pytest.fixture
def ada(world):
    return User.objects.get(world=world, account_id="acc-ada")


def basic(email, token):
    return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()


def test_literal_segments_win_over_parameters():
    def h(req):
        return None

    router = Router(
        [
            Route("GET", "/rest/api/{version}/issue/{key}", h, "a"),
            Route("GET", "/rest/api/{version}/issue/createmeta", h, "b"),
        ]
    )
    assert router.resolve("GET", "/rest/api/3/issue/createmeta")[0].operation == "b"
    route, params = router.resolve("GET", "/rest/api/latest/issue/OPS-1")
    assert route.operation == "a" and params == {"version": "latest", "key": "OPS-1"}


@pytest.mark.parametrize("text,expected", [("True", True), ("false", False), ("FALSE", False), ("1", True)])
def test_booleans_are_read_case_insensitively(text, expected):
    assert parse_bool(text) is expected


def test_server_info_says_cloud_and_links_are_absolute(world, ada):
    r = SimClient(world, ada).get("/rest/api/2/serverInfo", params={"doHealthCheck": "False"})
    assert r.status_code == 200
    assert r.json()["deploymentType"] == "Cloud"
    assert r.json()["versionNumbers"] == [1001, 0, 0]
    assert r.json()["baseUrl"] == "http://127.0.0.1:8000/sim/tiny"


def test_every_call_ticks_the_clock_and_lands_in_the_trace(world, ada):
    client = SimClient(world, ada)
    client.get("/rest/api/3/myself")
    client.get("/rest/api/3/nothing/here")
    calls = list(ApiCall.objects.filter(world=world))
    assert [(c.seq, c.status, c.operation) for c in calls] == [(1, 200, "getCurrentUser"), (2, 404, "")]
    assert calls[1].at - calls[0].at == dt.timedelta(seconds=1)


def test_unknown_path_is_a_jira_shaped_404(world, ada):
    r = SimClient(world, ada).get("/rest/api/3/nothing")
    assert r.status_code == 404
    assert set(r.json()) == {"errorMessages", "errors"}


def test_known_path_with_the_wrong_method_is_405(world, ada):
    r = SimClient(world, ada).request("DELETE", "/rest/api/3/myself")
    assert r.status_code == 405
    assert r.json()["errorMessages"]


def test_confluence_paths_get_confluence_error_shapes(world, ada):
    client = SimClient(world, ada)
    v2 = client.get("/wiki/api/v2/nothing").json()
    assert v2["errors"][0]["status"] == 404
    v1 = client.get("/wiki/rest/api/nothing").json()
    assert v1["statusCode"] == 404 and v1["reason"] == "Not Found"


def test_http_door_needs_basic_auth(client, world, ada):
    r = client.get("/sim/tiny/rest/api/3/myself")
    assert r.status_code == 401
    assert r.json()["errorMessages"]
    r = client.get("/sim/tiny/rest/api/3/myself", HTTP_AUTHORIZATION=basic("ada@acme.test", "wrong"))
    assert r.status_code == 401


def test_http_door_serves_a_world_user(client, world, ada):
    r = client.get("/sim/tiny/rest/api/3/myself", HTTP_AUTHORIZATION=basic("ada@acme.test", ada.api_token))
    assert r.status_code == 200
    assert r.json()["accountId"] == "acc-ada"
    assert r.json()["self"] == "http://testserver/sim/tiny/rest/api/3/user?accountId=acc-ada"
    assert ApiCall.objects.get(world=world).door == "http"


def test_a_token_of_one_world_never_opens_another(client, world, ada):
    other = World.objects.create(slug="other", seed="none", clock_start=world.clock_start)
    User.objects.create(world=other, account_id="acc-ada", display_name="Ada", email="ada@acme.test")
    r = client.get("/sim/other/rest/api/3/myself", HTTP_AUTHORIZATION=basic("ada@acme.test", ada.api_token))
    assert r.status_code == 401


def test_a_crashing_handler_answers_400_and_rolls_back(monkeypatch, world, ada):
    from simulator import routing

    def crash(req):
        req.world.allocate_ids(3)
        req.record_create("issue", "X-1")
        raise RuntimeError("boom")

    monkeypatch.setattr(
        routing, "_router", Router([Route("POST", "/rest/api/{version}/crash", crash, "crash")])
    )
    before = world.next_ext_id
    r = SimClient(world, ada).post("/rest/api/3/crash", json={})
    assert r.status_code == 400
    assert "RuntimeError" in r.json()["errorMessages"][0]
    world.refresh_from_db()
    assert world.next_ext_id == before
    assert not ApiCall.objects.get(world=world).changes.exists()


def test_invalid_json_over_http_is_a_shaped_400(client, world, ada):
    r = client.post(
        "/sim/tiny/rest/api/3/myself",
        data="{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic("ada@acme.test", ada.api_token),
    )
    assert r.status_code in (400, 405)
    assert "errorMessages" in r.json()


@pytest.mark.parametrize(
    "path",
    ["/rest/api/3/issue/²", "/rest/agile/1.0/board/²", "/wiki/api/v2/pages/²", "/wiki/rest/api/content/²"],
)
def test_a_superscript_digit_id_is_refused_as_not_a_number_not_a_crash(jira, path):
    # "²".isdigit() is true but int("²") fails: ids are checked with isdecimal().
    response = jira.request("GET", path)
    assert response.status_code in (400, 404)
    assert "could not be processed" not in response.text
