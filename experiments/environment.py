"""The simulator-backed environment the trainer's agent loop runs in, and the tool docs of a suite.

``SimEnvironment(variant)`` is one episode of one task variant (the trainer's ``Environment``
protocol, trainer/rollout.py): ``reset()`` forks a fresh world from the variant's seed and runs its
setup (experiments.runner.prepare), ``step(action)`` sends one parsed action through the in-process
client as the world's acting user, ``result()`` runs the verifier (experiments.verifiers.verify) on
the final world and the call trace after the setup, and marks the world ``passed`` or ``failed`` so
that pruning can keep the worlds worth a look.

``oracle_transcript(variant)`` plays a variant's reference solution through a SimEnvironment, so a
demonstration for SFT holds the same observations an agent would have read, and ``tool_docs(tasks)``
renders the endpoints of the API families a suite's tasks use, one line each, for the system prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from experiments.runner import prepare
from experiments.templating import render_value
from experiments.verifiers import verify
from simulator.client import SimClient
from simulator.models import World
from trainer.parsing import ParsedAction, parse_action
from trainer.prompts import Observation, compact_json
from trainer.rollout import EpisodeResult, format_error_observation

PASSED, FAILED = "passed", "failed"


class EpisodeNotStarted(RuntimeError):
    """step() or result() before reset()."""


class SimEnvironment:
    """One episode of ``variant`` (an experiments.variants.Variant) against a fresh forked world.

    ``template`` is the seed world to fork (looked up from ``variant.seed`` when None);
    ``max_turns`` caps the variant's own turn limit. After ``result()``, ``world`` is the episode's
    world (its ``outcome`` set), ``calls`` the number of API calls the agent made,
    ``format_errors`` the number of unparseable actions and ``final_answer`` the answer of its
    ``{"final": ...}`` action (None when it never gave one).
    """

    def __init__(self, variant, *, template=None, max_turns: int | None = None) -> None:
        self.variant = variant
        self.template = template
        self.max_turns = min(variant.max_turns, max_turns) if max_turns else variant.max_turns
        self.prepared = None
        self.last_response = None  # the SimResult of the last call, for solvers played through step()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.turns = 0
        self.calls = 0
        self.format_errors = 0
        self.final_answer: str | None = None
        self.verdict = None

    @property
    def world(self):
        return self.prepared.world if self.prepared else None

    def reset(self) -> str:
        """Fork a fresh world, run the variant's setup; return the instruction (setup results bound).
        Every reset forks a new world: discard the previous one first (``discard_worlds``)."""
        self.prepared = prepare(self.variant, template=self.template)
        self._reset_counters()
        return self.prepared.variant.instruction

    def step(self, action: ParsedAction) -> tuple[Observation | None, bool]:
        """Apply one action. A call answers with its status and JSON body; a format error with the
        trainer's explanatory observation (and counts against the reward); ``{"final": ...}`` ends
        the episode. The episode also ends when the turn limit is reached."""
        if self.prepared is None:
            raise EpisodeNotStarted("call reset() before step()")
        self.turns += 1
        if not action.ok:
            self.format_errors += 1
            return format_error_observation(action), self.turns >= self.max_turns
        if action.is_final:
            self.final_answer = action.final
            return None, True
        observation = self._call(action.method, action.path, action.body)
        return observation, self.turns >= self.max_turns

    def _call(self, method: str, path: str, body) -> Observation:
        self.calls += 1
        # The simulator answers every request, malformed ones included, in Atlassian's error shapes.
        # The episode's world is its own: no need to wait for each call's trace statement (the
        # verifier's first read does).
        client = SimClient(self.prepared.world, self.prepared.user, wait=False)
        response = client.request(method, path, json=body)
        self.last_response = response
        return Observation(response.status_code, response.json() if response.text else None)

    def result(self) -> EpisodeResult:
        """Verify the finished episode; mark its world passed/failed. Details are JSON-able."""
        if self.prepared is None:
            raise EpisodeNotStarted("call reset() before result()")
        prepared = self.prepared
        self.verdict = verify(
            prepared.world,
            prepared.variant,
            final_answer=self.final_answer,
            format_errors=self.format_errors,
            after_seq=prepared.after_seq,
        )
        outcome = PASSED if self.verdict.success else FAILED
        World.objects.filter(pk=prepared.world.pk).update(outcome=outcome)
        prepared.world.outcome = outcome
        verdict = self.verdict.to_dict()
        return EpisodeResult(
            reward=self.verdict.reward,
            success=self.verdict.success,
            details={
                "variant": self.variant.key,
                "world": prepared.world.slug,
                "format_errors": self.format_errors,
                "calls": self.calls,
                "turns": self.turns,
                "final_answer": self.final_answer,
                "checks": verdict["checks"],
                "breakdown": verdict["breakdown"],
            },
        )


def discard_worlds(worlds) -> int:
    """Delete episode worlds once their verdicts are kept elsewhere; returns how many."""
    from simulator.forking import delete_worlds

    ids = [world.pk for world in worlds if world is not None]
    return delete_worlds(World.objects.filter(pk__in=ids)) if ids else 0


# --- Oracle transcripts --------------------------------------------------------------------------


class OracleUnplayable(ValueError):
    """A solution an agent could not have played (e.g. a step acting as another user)."""


# Left unescaped in a demonstration's query strings so that JQL stays readable
# (`jql=project = OPS AND status = "To Do"`); `&`, `+`, `#` and `%` are still escaped.
READABLE = " =,:\"'()<>!*/"


def action_text(method: str, path: str, query=None, body=None) -> str:
    """The policy's action for one call, as a demonstration writes it: compact JSON, the query
    string in the path, no body key when there is none."""
    if query:
        encoded = urlencode(query, doseq=True, safe=READABLE, quote_via=quote)
        path = f"{path}{'&' if '?' in path else '?'}{encoded}"
    action = {"method": method.upper(), "path": path}
    if body is not None:
        action["body"] = body
    return compact_json(action)


def final_text(answer) -> str:
    return compact_json({"final": answer if isinstance(answer, str) else json.dumps(answer)})


@dataclass
class Transcript:
    """A variant's oracle played through a SimEnvironment: the instruction, the actions the oracle
    took (action texts) with what each got back, and the verdict on the result."""

    variant: object
    instruction: str
    turns: list[tuple[str, Observation | None]] = field(default_factory=list)
    result: EpisodeResult | None = None
    world: object = None


class _EnvironmentClient:
    """What a named solver calls (solvers only use ``request``): a SimClient look-alike whose
    requests go through the environment's step(), so they are traced, counted and recorded like
    an agent's."""

    def __init__(self, env: SimEnvironment, transcript: Transcript) -> None:
        self.env, self.transcript = env, transcript

    def request(self, method, path, params=None, json=None):
        text = action_text(method, path, params, json)
        observation, _done = self.env.step(parse_action(text))
        self.transcript.turns.append((text, observation))
        return self.env.last_response


def oracle_transcript(variant, *, template=None) -> Transcript:
    """Reset a SimEnvironment for ``variant``, play its solution through ``step()`` (a call list,
    with ``save:`` results bound as the runner binds them, or a named solver), end with its final
    answer and verify. The world is left for the caller to discard (``transcript.world``).
    Raises OracleUnplayable for a solution an agent could not have played."""
    from experiments.solvers import SOLVERS

    env = SimEnvironment(variant, template=template, max_turns=10_000)
    transcript = Transcript(variant, env.reset())
    transcript.world = env.world
    solution = env.prepared.variant.solution
    if isinstance(solution, dict):
        answer = SOLVERS[solution["solver"]](_EnvironmentClient(env, transcript), solution.get("args") or {})
    else:
        answer = _play_steps(env, transcript, solution or [])
    if answer is not None:
        text = final_text(answer)
        env.step(parse_action(text))
        transcript.turns.append((text, None))
    transcript.result = env.result()
    return transcript


def _play_steps(env, transcript, steps):
    saved = dict(env.prepared.saved)
    late = [s["save"] for s in steps if isinstance(s, dict) and s.get("save")]
    for raw in steps:
        step = render_value(raw, saved, late=[n for n in late if n not in saved]) if saved else raw
        if "final" in step:
            return step["final"]
        if step.get("as"):
            raise OracleUnplayable(f"{env.variant.key}: a solution step acts as another user ({step['as']})")
        text = action_text(step["method"], step["path"], step.get("query"), step.get("body"))
        observation, _done = env.step(parse_action(text))
        transcript.turns.append((text, observation))
        if step.get("save"):
            response = env.last_response
            saved[step["save"]] = response.json() if response is not None and response.text else None
    return None


# --- Tool docs -------------------------------------------------------------------------------------


def _route_of(method, path):
    from simulator.routing import ApiError, get_router

    try:
        route, _params = get_router().resolve(method, path.split("?", 1)[0])
    except ApiError:
        return None
    return route


def used_routes(tasks):
    """The routes the tasks' oracles call, in first-use order: one train (else test) variant per
    task is played in a throw-away world. ``tasks``: TaskSpecs."""
    from experiments.suites import variants
    from simulator.seeding import load_seed

    routes = []
    for task in tasks:
        seed = load_seed(task.seed)
        drawn = variants(task, "train", world=seed, count=1) or variants(task, "test", world=seed, count=1)
        if not drawn:
            continue
        transcript = oracle_transcript(drawn[0], template=seed)
        try:
            for text, _observation in transcript.turns:
                action = json.loads(text)
                if "method" not in action:
                    continue  # the final answer
                route = _route_of(action["method"], action["path"])
                if route is not None and route not in routes:
                    routes.append(route)
        finally:
            discard_worlds([transcript.world])
    return routes


def operation_line(op: dict) -> str:
    """One endpoint line, as trainer.prompts.endpoint_docs writes them:
    ``POST /rest/api/3/issue - Create an issue; body {...}``, query parameters as ``?a&b``."""
    line = f"{op['method']} {op['path']}" + ("?" + "&".join(op["params"]) if op.get("params") else "")
    line += f" - {op['summary']}"
    if "body_example" in op:
        line += "; body " + compact_json(op["body_example"])
    return line


def tool_docs(tasks, *, scope: str = "families") -> str:
    """The endpoint lines of a suite's system prompt. ``tasks``: the suite's TaskSpecs.

    ``scope="families"``: every operation of the API families (jira-platform, jira-agile,
    confluence-v2, confluence-v1) the tasks' oracles call; ``scope="used"``: only the operations
    they call (a much shorter prompt). Jira platform paths are written for v3.
    """
    from simulator.openapi import family_of, operations

    if scope not in ("families", "used"):
        raise ValueError(f"scope is 'families' or 'used', not {scope!r}")
    routes = used_routes(tasks)
    families = []
    for route in routes:
        if family_of(route) not in families:
            families.append(family_of(route))
    if not families:
        return ""
    ops = operations(families)
    if scope == "used":
        used = {(r.method, r.operation) for r in routes}
        ops = [op for op in ops if (op["method"], op["operation"]) in used]
    return "\n".join(operation_line(op) for op in ops)
