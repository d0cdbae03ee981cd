"""Running a variant's call lists in a fresh world: the setup before an episode, and the
reference solution (the oracle) in place of an agent.

``prepare(variant)`` forks the variant's seed world, runs the setup as the world's first user
and returns the world, the variant with the setup's saved results filled in, and ``after_seq``:
the trace checks look only at calls after it, so the setup is not counted as the agent's.
``run_solution(prepared)`` then plays the solution and returns the final answer.
"""

from dataclasses import dataclass, field

from experiments.solvers import SOLVERS
from experiments.templating import render_value
from simulator import selectors


class SetupError(RuntimeError):
    """A setup call failed: the task cannot be prepared as written."""


@dataclass
class Prepared:
    world: object
    variant: object  # the Variant, setup results bound
    user: object  # simulator User the episode acts as
    after_seq: int
    saved: dict = field(default_factory=dict)


def _client(world, user):
    from simulator.client import SimClient

    return SimClient(world, user)


def _template(seed):
    from simulator.seeding import load_seed

    return load_seed(seed)


def fork_for(variant, template=None):
    """A fresh world forked from the variant's seed (loaded on first use)."""
    return (template or _template(variant.seed)).fork()


def run_steps(world, user, steps, saved, *, strict):
    """Play steps in order, rendering each with the results saved so far; returns the final
    answer of a ``final`` step (None without one). ``strict``: a failed call raises SetupError."""
    for raw in steps:
        late = [n for n in _saved_names(steps) if n not in saved]
        step = render_value(raw, saved, late=late) if saved else raw
        if "final" in step:
            return step["final"]
        actor = selectors.acting_user(world, step["as"]) if step.get("as") else user
        response = _client(world, actor).request(
            step["method"], step["path"], params=step.get("query"), json=step.get("body")
        )
        if strict and response.status_code >= 400:
            raise SetupError(
                f"{step['method']} {step['path']} answered {response.status_code}: {response.text[:300]}"
            )
        if step.get("save"):
            saved[step["save"]] = response.json() if response.text else None
    return None


def _saved_names(steps):
    return [s["save"] for s in steps if isinstance(s, dict) and s.get("save")]


def prepare(variant, *, template=None):
    """Fork the seed, run the setup, bind its results into the variant."""
    world = fork_for(variant, template)
    user = selectors.acting_user(world)
    saved = {}
    try:
        run_steps(world, user, variant.setup, saved, strict=True)
    except SetupError:
        from simulator.forking import delete_worlds
        from simulator.models import World

        delete_worlds(World.objects.filter(pk=world.pk))  # nobody will use a half-prepared world
        raise
    world.refresh_from_db(fields=["ticks", "next_ext_id"])
    return Prepared(world, variant.bind(saved), user, after_seq=world.ticks, saved=saved)


def run_solution(prepared, steps=None):
    """Play the variant's solution (or ``steps`` in its place) in the prepared world; returns the
    final answer."""
    solution = prepared.variant.solution if steps is None else steps
    if isinstance(solution, dict):
        solve = SOLVERS[solution["solver"]]
        return solve(_client(prepared.world, prepared.user), solution.get("args") or {})
    return run_steps(prepared.world, prepared.user, solution or [], dict(prepared.saved), strict=False)
