"""Fuzzing the HTTP door with schemathesis over the generated OpenAPI document: whatever a
client sends, the simulator answers with JSON (or an empty 204) and never with a 5xx.

Runs against a live server and a fork of the acme seed with committed data. Each API family is
one test that fuzzes its operations in turn on one world (the calls pile up in that world, as an
agent's would); half the cases name real objects of the seed (OPS-1, a real comment id, ...) so
that the handlers get past their lookups. Bounded and deterministic: a fixed number of examples
per operation and generation mode, derandomized, no example database, no shrinking.

An operation that is known to answer 5xx is listed in KNOWN_SERVER_ERRORS with the reason; it is
fuzzed alone, as an expected failure, until its handler is fixed (the xfail is strict: a fixed
handler makes the test fail until the entry is removed).
"""

import base64
import json
import warnings

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from simulator import openapi
from tests.simulator.conftest import ADA

EXAMPLES = 5  # per operation and generation mode: about a minute in all on PostgreSQL
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# operationId: why it answers 5xx (with the request that showed it).
KNOWN_SERVER_ERRORS = {}

# NUL characters are left out of the generated strings: the dispatcher refuses them all alike
# (PostgreSQL cannot store them in the trace), which the test at the end checks on its own.
SCHEMA = schemathesis.openapi.from_dict(
    openapi.document(), config=schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
)
OPERATIONS = {}
for _result in SCHEMA.get_all_operations():
    _op = _result.ok()
    OPERATIONS[_op.definition.raw["operationId"]] = _op


def _groups():
    """(id, [operationIds], marks) per family of the document, then one per known 5xx."""
    groups = []
    for tag in openapi.document()["tags"]:
        family = tag["name"]
        ids = [
            op_id
            for op_id, op in OPERATIONS.items()
            if op.definition.raw["tags"] == [family] and op_id not in KNOWN_SERVER_ERRORS
        ]
        groups.append(pytest.param(ids, id=family))
    for op_id, reason in KNOWN_SERVER_ERRORS.items():
        groups.append(pytest.param([op_id], id=op_id, marks=pytest.mark.xfail(reason=reason, strict=True)))
    return groups


@pytest.fixture
def fuzz_world(transactional_db):
    """A fork of acme with committed data (the live server reads it from another connection)."""
    from simulator.models import User
    from simulator.seeding import load_seed

    world = load_seed("acme").fork()
    user = User.objects.get(world=world, account_id=ADA)
    token = base64.b64encode(f"{user.email}:{user.api_token}".encode()).decode()
    return world, {"Authorization": f"Basic {token}"}


def known_values(world):
    """Real values for path parameters, by parameter name (ids as the API shows them)."""
    from simulator import models as m

    def ids(model):
        return [str(i) for i in model.objects.filter(world=world).values_list("ext_id", flat=True)[:5]]

    issues = list(m.Issue.objects.filter(world=world).values_list("key", "ext_id")[:5])
    pages = ids(m.Page)
    known = {
        "issueIdOrKey": [k for k, _ in issues] + [str(i) for _, i in issues],
        "projectIdOrKey": list(m.Project.objects.filter(world=world).values_list("key", flat=True)),
        "issueTypeId": ids(m.IssueType),
        "idOrName": list(m.Status.objects.filter(world=world).values_list("name", flat=True)[:5]),
        "linkId": ids(m.IssueLink),
        "issueLinkTypeId": ids(m.IssueLinkType),
        "boardId": ids(m.Board),
        "sprintId": ids(m.Sprint),
        "spaceKey": list(m.Space.objects.filter(world=world).values_list("key", flat=True)),
        "spaceId": ids(m.Space),
        "pageId": pages,
        # "id" means a comment, a priority, a status, a page, ... depending on the path.
        "id": ids(m.Comment) + ids(m.Priority) + ids(m.IssueType) + ids(m.Resolution) + pages,
    }
    return {name: values for name, values in known.items() if values}


def _real_parameters(operation, known):
    names = [p.name for p in operation.path_parameters if p.name in known]
    return st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names})


def problem(response):
    """What is wrong with an answer, or None: a 5xx, or a body that is not JSON."""
    if response.status_code >= 500:
        return f"answered {response.status_code}"
    if not response.content:
        return None
    try:
        json.loads(response.content)
    except ValueError:
        return f"answered {response.status_code} with a body that is not JSON"
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    if not content_type or "application/json" not in content_type[0]:
        return f"answered {response.status_code} with Content-Type {content_type}"
    return None


def _masked_crash(response):
    # dispatch() turns a handler's exception into a 400 "could not be processed (TypeError)".
    return response.status_code == 400 and b"could not be processed (" in response.content


def _request_text(case):
    query = f" query={case.query}" if case.query else ""
    body = (
        f" body={json.dumps(case.body)[:300]}" if case.body is not None and not _is_unset(case.body) else ""
    )
    return f"{case.method} {case.formatted_path}{query}{body}"


def _is_unset(value):
    return type(value).__name__ == "NotSet"


def fuzz(operation, base_url, headers, known, found, masked):
    """Send EXAMPLES generated requests per generation mode; record the first problem."""
    real = _real_parameters(operation, known)
    for mode in MODES:
        strategy = st.one_of(
            operation.as_strategy(generation_mode=mode),
            real.flatmap(
                lambda params, mode=mode: operation.as_strategy(generation_mode=mode, path_parameters=params)
            ),
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            label = operation.definition.raw["operationId"]
            what = problem(response)
            if what and label not in found:
                found[label] = f"{what}: {_request_text(case)}"
            elif _masked_crash(response) and label not in masked:
                masked[label] = _request_text(case)

        run()


@pytest.mark.parametrize("operation_ids", _groups())
def test_no_generated_request_gets_a_server_error(operation_ids, fuzz_world, live_server):
    world, headers = fuzz_world
    base_url = f"{live_server.url}/sim/{world.slug}"
    known = known_values(world)
    found, masked = {}, {}
    for op_id in operation_ids:
        fuzz(OPERATIONS[op_id], base_url, headers, known, found, masked)
    if masked:
        warnings.warn(
            "handler exceptions answered as 400: "
            + "; ".join(f"{op}: {request}" for op, request in masked.items()),
            stacklevel=1,
        )
    assert not found, "\n".join(f"{op}: {what}" for op, what in found.items())


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/rest/api/3/issue/OPS-1%00", None, None),
        ("GET", "/rest/api/3/issue/OPS-1/transitions", {"expand": "\x00"}, None),
        ("POST", "/rest/api/3/search/approximate-count", None, {"jql": "project = OPS\x00"}),
    ],
    ids=["path", "query", "body"],
)
def test_a_nul_character_gets_a_json_answer_not_a_server_error(
    method, path, params, body, fuzz_world, live_server
):
    world, headers = fuzz_world
    url = f"{live_server.url}/sim/{world.slug}{path}"
    response = requests.request(method, url, params=params, json=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert "NUL character" in json.dumps(response.json())
