"""Oracle and mutation testing of a task's variants: proof that each is solvable and that its
checks can fail.

For one variant, in fresh forks of its seed world (deleted again afterwards):

- the oracle — the task's solution — must score reward 1.0 with success;
- the world right after setup, with no answer, must not already pass;
- a no-op (stop at once) and a single read must fail and score below 0.5;
- mutations of the solution must fail and score below 1.0: stop early (the last call left
  out), drop a field (the last write's body loses one field), an extra destructive call (delete
  an issue the task never names), wrong entity (the same calls aimed at another issue, page or
  project) and wrong transition (a transition the workflow offers that does not lead to the
  target status).

A variant that passes can still be *saturated*: its no-op scores close to the limit, a mutation
scores close to the oracle, or no mutation applies to its solution. Such variants are flagged
(``flags``), not failed: a reward that barely separates right from wrong teaches little.
"""

import json
import re
from dataclasses import dataclass, field

from experiments.runner import SetupError, prepare, run_solution
from experiments.solvers import SolverError
from experiments.verifiers import verify
from simulator import selectors

WRITES = {"POST", "PUT", "DELETE", "PATCH"}
LOW = 0.5
# Flag thresholds: a no-op this high, or a mutation this close to 1.0, saturates the reward.
SATURATED_NOOP = 0.4
SATURATED_MUTANT = 0.9
KEY = re.compile(r"\b[A-Z][A-Z0-9]+-\d+\b")
PAGE_PATH = re.compile(r"/pages/(\d+)")
PARENT_ID = re.compile(r'"parentId": "(\d+)"')


@dataclass
class VariantCheck:
    key: str
    oracle_reward: float | None = None
    failures: list = field(default_factory=list)  # sentences
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)  # why the variant's reward looks saturated
    mutants: dict = field(default_factory=dict)  # mutation name -> reward

    @property
    def passed(self):
        return not self.failures

    def line(self, prefix=""):
        status = "ok  " if self.passed else "FAIL"
        reward = "-" if self.oracle_reward is None else f"{self.oracle_reward:.3f}"
        return (
            f"{status} {prefix}{self.key} oracle={reward}"
            + "".join(f"\n     {f}" for f in self.failures)
            + "".join(f"\n     ! saturated: {f}" for f in self.flags)
        )

    def to_dict(self):
        return {
            "key": self.key,
            "passed": self.passed,
            "oracle_reward": self.oracle_reward,
            "failures": self.failures,
            "notes": self.notes,
            "flags": self.flags,
            "mutants": self.mutants,
        }


def _score(prepared, final_answer):
    return verify(prepared.world, prepared.variant, final_answer=final_answer, after_seq=prepared.after_seq)


# --- Mutations -----------------------------------------------------------------------------------
# Each is (name, play): play(prepared) runs the mutant in a prepared world and returns its answer.


def _steps_player(steps):
    return lambda prepared: run_solution(prepared, steps)


def _client(prepared):
    from simulator.client import SimClient

    return SimClient(prepared.world, prepared.user)


def mutations(solution, world, variant):
    """(name, play) for each mutation that applies to the variant's (bound) solution: a call
    list, or a named solver."""
    if isinstance(solution, dict):
        return _solver_mutations(solution, world, variant)
    steps = solution or []
    calls = [s for s in steps if "final" not in s]
    final = [s for s in steps if "final" in s]
    out = []
    if calls:
        out.append(("stop early", _steps_player(calls[:-1] + final)))
    writes = [i for i, s in enumerate(steps) if s.get("method") in WRITES and s.get("body")]
    if writes and isinstance(steps[writes[-1]]["body"], dict):
        i = writes[-1]
        dropped, body = _drop_a_field(steps[i]["body"])
        out.append(
            (f"drop {dropped}", _steps_player([*steps[:i], {**steps[i], "body": body}, *steps[i + 1 :]]))
        )
    destroy = _destroy(world, variant)
    if destroy:
        out.append(
            (
                f"extra delete of {destroy['path'].rsplit('/', 1)[-1]}",
                _steps_player([*calls, destroy, *final]),
            )
        )
    wrong = _wrong_entity(steps, world, variant)
    if wrong:
        what, changed = wrong
        out.append((f"wrong entity ({what})", _steps_player(changed)))
    if any(s.get("method") == "POST" and str(s.get("path", "")).endswith("/transitions") for s in calls):
        out.append(("wrong transition", lambda prepared: _wrong_transition_steps(prepared, steps)))
    return out


def _solver_mutations(solution, world, variant):
    from experiments.solvers import SOLVERS

    solve = SOLVERS[solution["solver"]]
    args = solution.get("args") or {}
    answer = args.get("answer", "done")
    out = [("stop early", lambda prepared: answer)]
    destroy = _destroy(world, variant)
    if destroy:

        def extra(prepared):
            result = solve(_client(prepared), args)
            run_solution(prepared, [destroy])
            return result

        out.append((f"extra delete of {destroy['path'].rsplit('/', 1)[-1]}", extra))
    wrong = _wrong_entity([{"args": args}], world, variant)
    if wrong:
        what, (changed,) = wrong
        out.append(
            (f"wrong entity ({what})", lambda prepared: _solve_or_none(solve, prepared, changed["args"]))
        )
    if solution["solver"] == "transition_issue":
        out.append(
            ("wrong transition", lambda prepared: _wrong_transition(prepared, args["issue"], args["status"]))
        )
    return out


def _solve_or_none(solve, prepared, args):
    try:
        return solve(_client(prepared), args)
    except SolverError:
        return None


def _drop_a_field(body):
    """(what was dropped, the body without it): an issue's last field but its project and type,
    or else the body's last key."""
    fields = body.get("fields")
    if isinstance(fields, dict):
        optional = [k for k in fields if k not in ("project", "issuetype")]
        if optional:
            name = optional[-1]
            return f"fields.{name}", {**body, "fields": {k: v for k, v in fields.items() if k != name}}
    name = list(body)[-1]
    return name, {k: v for k, v in body.items() if k != name}


def _mentioned_keys(variant):
    return set(KEY.findall(json.dumps(variant.to_dict())))


def _bystander_issue(world, variant, project=None):
    """An issue the variant never mentions and no issue hangs under (of ``project`` when
    given)."""
    mentioned = _mentioned_keys(variant)
    issues = selectors.entities(world, "issues")
    parents = {i["parent"] for i in issues if i["parent"]}
    for issue in issues:
        if issue["key"] in mentioned or issue["subtask"] or issue["key"] in parents:
            continue  # a leaf issue: deleting it touches nothing else
        if project is None or issue["project"] == project:
            return issue["key"]
    return None


def _destroy(world, variant):
    victim = _bystander_issue(world, variant)
    if victim is None:
        return None
    return {"method": "DELETE", "path": f"/rest/api/3/issue/{victim}", "query": {"deleteSubtasks": "true"}}


def _wrong_entity(steps, world, variant):
    """(what, the steps aimed elsewhere): the first issue key the steps name swapped for another
    issue of its project; else the first page id (in a path or as parentId) for another page;
    else the project of an issue create for another project. None when nothing applies."""
    text = json.dumps(steps)
    keys = KEY.findall(text)
    if keys:
        target = keys[0]
        other = _bystander_issue(world, variant, project=target.split("-")[0])
        if other:
            return f"{target} → {other}", json.loads(re.sub(rf"\b{re.escape(target)}\b", other, text))
    pages = PAGE_PATH.findall(text) or PARENT_ID.findall(text)
    if pages:
        target = pages[0]
        mentioned = set(re.findall(r"\d+", json.dumps(variant.to_dict())))
        other = next((p["id"] for p in selectors.entities(world, "pages") if p["id"] not in mentioned), None)
        if other:
            swapped = text.replace(f"/pages/{target}", f"/pages/{other}").replace(
                f'"parentId": "{target}"', f'"parentId": "{other}"'
            )
            return f"page {target} → {other}", json.loads(swapped)
    projects = re.findall(r'"project": \{"key": "([A-Z][A-Z0-9]+)"\}', text)
    if projects:
        target = projects[0]
        other = next((p["key"] for p in selectors.entities(world, "projects") if p["key"] != target), None)
        if other:
            return (
                f"project {target} → {other}",
                json.loads(
                    text.replace(f'"project": {{"key": "{target}"}}', f'"project": {{"key": "{other}"}}')
                ),
            )
    return None


def _wrong_transition(prepared, issue, status):
    """Take one transition the issue offers that does not lead to ``status``."""
    client = _client(prepared)
    path = f"/rest/api/3/issue/{issue}/transitions"
    offered = client.request("GET", path).json().get("transitions", [])
    current = (selectors.issue_state(prepared.world, issue) or {}).get("status")
    wrong = [
        t
        for t in offered
        if t["to"]["name"].casefold() not in (str(status).casefold(), str(current).casefold())
    ]
    if wrong:
        client.request("POST", path, json={"transition": {"id": wrong[0]["id"]}})
    return "done"


def _wrong_transition_steps(prepared, steps):
    """The steps with each transition POST given another offered transition's id."""
    changed = []
    for step in steps:
        if step.get("method") == "POST" and str(step.get("path", "")).endswith("/transitions"):
            offered = _client(prepared).request("GET", step["path"]).json().get("transitions", [])
            chosen = str(((step.get("body") or {}).get("transition") or {}).get("id"))
            others = [t for t in offered if str(t["id"]) != chosen]
            if others:
                body = {**step["body"], "transition": {"id": others[0]["id"]}}
                step = {**step, "body": body}
        changed.append(step)
    return run_solution(prepared, changed)


# --- The check of one variant --------------------------------------------------------------------


def check_variant(variant, *, template=None):
    """Run every self-test of one variant; a VariantCheck lists what failed and what looks
    saturated. The forked worlds are deleted afterwards."""
    from simulator.forking import delete_worlds
    from simulator.models import World

    report = VariantCheck(variant.key)
    worlds = []

    def fresh():
        prepared = prepare(variant, template=template)
        worlds.append(prepared.world.pk)
        return prepared

    try:
        _check(variant, report, fresh)
    except SetupError as err:
        report.failures.append(f"setup failed: {err}")
    finally:
        delete_worlds(World.objects.filter(pk__in=worlds))
    return report


def _check(variant, report, fresh):
    noop = _score(fresh(), "")
    if noop.success:
        report.failures.append("the world right after setup already passes (a no-op succeeds)")
    if noop.reward >= LOW:
        report.failures.append(f"a no-op scores {noop.reward:.3f}, not below {LOW}")
    elif noop.reward >= SATURATED_NOOP:
        report.flags.append(f"a no-op already scores {noop.reward:.3f}")

    oracle = fresh()
    try:
        final = run_solution(oracle)
    except (SolverError, KeyError) as err:
        report.failures.append(f"the solution could not run: {err}")
        return
    verdict = _score(oracle, final)
    report.oracle_reward = verdict.reward
    if verdict.reward < 1.0 or not verdict.success:
        failed = "; ".join(c.detail for c in verdict.checks if not c.passed) or "below 1.0"
        report.failures.append(
            f"the oracle scores {verdict.reward:.3f} (success {verdict.success}): {failed}"
        )

    read = fresh()
    run_solution(read, [{"method": "GET", "path": "/rest/api/3/myself"}])
    single = _score(read, "")
    if single.success or single.reward >= LOW:
        report.failures.append(f"a single read scores {single.reward:.3f} (success {single.success})")

    applied = mutations(oracle.variant.solution, oracle.world, oracle.variant)
    if not applied:
        report.flags.append("no mutation applies to the solution")
    for name, play in applied:
        mutant = fresh()
        answer = play(mutant)
        result = _score(mutant, answer)
        report.mutants[name] = result.reward
        if result.success or result.reward >= 1.0:
            report.failures.append(
                f"mutation '{name}' still scores {result.reward:.3f} (success {result.success})"
            )
        elif result.reward >= SATURATED_MUTANT:
            report.flags.append(f"mutation '{name}' scores {result.reward:.3f}, close to the oracle")


def check_tasks(tasks, *, sample=None, splits=("train", "test")):
    """Check the variants of each task (TaskSpecs): every variant of the splits, or the first
    ``sample`` of each split. Yields one VariantCheck per variant, as it is done. The tasks' seed
    worlds are loaded first when they are not."""
    from experiments.variants import draw_variants
    from simulator.seeding import load_seed

    for seed in sorted({t.seed for t in tasks}):
        load_seed(seed)  # a no-op once the seed is loaded
    for task in tasks:
        for split in splits:
            count = None if sample is None else min(sample, task.variants.get(split, 0))
            for variant in draw_variants(task, split, count=count):
                yield check_variant(variant)


def saturated_tasks(reports):
    """{"suite/task": [reasons]} for the tasks with a variant flagged as saturated, from
    (suite name, VariantCheck) pairs."""
    out = {}
    for suite, report in reports:
        task_id, split, index = report.key.split("/")
        for flag in report.flags:
            out.setdefault(f"{suite}/{task_id}", []).append(f"{split}/{index}: {flag}")
    return out
