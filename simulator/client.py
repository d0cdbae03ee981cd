"""The in-process door: rollouts call the simulator without sockets, through the same handlers,
validation and trace as the HTTP door."""

from urllib.parse import parse_qs, urlsplit

from simulator.routing import dispatch

# Self links still need a host; this one is what `simworld create` prints by default.
DEFAULT_BASE = "http://127.0.0.1:8000"


class SimResult:
    """The part of a ``requests.Response`` rollouts and tests use."""

    def __init__(self, response):
        self.status_code = response.status
        self._body = response.body
        self._response = response
        self.headers = dict(response.headers)
        if response.body is not None:
            self.headers.setdefault("Content-Type", "application/json;charset=UTF-8")

    @property
    def ok(self):
        return self.status_code < 400

    @property
    def text(self):
        return self._response.text()

    @property
    def content(self):
        return self.text.encode()

    def json(self):
        if self._body is None:
            raise ValueError("empty response body")
        return self._body

    def __repr__(self):
        return f"<SimResult {self.status_code}>"


class SimClient:
    """``SimClient(world, user).request("GET", "/rest/api/3/myself")``; paths are below the
    world's mount (``/rest/...`` for Jira, ``/wiki/...`` for Confluence).

    ``wait=False`` is for a world this client alone uses, such as a rollout's episode: on
    PostgreSQL a call whose one write is its trace statement then returns without waiting for that
    statement's answer, which this connection's next statement reads (simulator.trace.
    UnansweredStatement; a failure is raised there as TraceStatementFailed). Everything on this
    connection sees the call at once; another connection may see it a fraction of a millisecond
    after the call returned, which is why the default waits.
    """

    def __init__(self, world, user, host=DEFAULT_BASE, wait=True):
        self.world = world
        self.user = user
        self.base_url = f"{host.rstrip('/')}/sim/{world.slug}"
        self.wait = wait

    def request(self, method, path, params=None, json=None):
        path, params = _split_query(path, params)
        response = dispatch(
            self.world, self.user, method, path, params, json, "client", self.base_url, wait=self.wait
        )
        return SimResult(response)

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def post(self, path, json=None, params=None):
        return self.request("POST", path, params=params, json=json)

    def put(self, path, json=None, params=None):
        return self.request("PUT", path, params=params, json=json)

    def delete(self, path, params=None):
        return self.request("DELETE", path, params=params)


def _split_query(path, params):
    """Accept a query string in the path too (agents write ``/search/jql?jql=...``), and paths
    given as absolute ``self`` URLs of this world."""
    parts = urlsplit(path)
    path = parts.path
    if path.startswith("/sim/"):
        path = "/" + path.split("/sim/", 1)[1].split("/", 1)[-1]
    merged = {k: list(v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key, value in (params or {}).items():
        merged.setdefault(key, []).extend(value if isinstance(value, list | tuple) else [value])
    return path, merged
