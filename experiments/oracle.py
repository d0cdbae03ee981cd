"""Oracle and mutation testing of a task's variants: proof that each is solvable and that its
checks can fail.

For one variant, in fresh forks of its seed world:

- the oracle — the task's solution — must score reward 1.0 with success;
- the world right after setup, with no answer, must not already pass;
- a no-op (stop at once) and a single read must fail and score below 0.5;
- mutations of a solution call list must fail and score below 1.0: stop early (the last call
  left out), drop a field (the last write's body loses one top-level field), an extra
  destructive call (delete an issue the task never names).
"""

import re
from dataclasses import dataclass, field

from experiments.runner import SetupError, prepare, run_solution
from experiments.solvers import SolverError
from experiments.verifiers import verify
from simulator import selectors

WRITES = {"POST", "PUT", "DELETE", "PATCH"}
LOW = 0.5


@dataclass
class VariantCheck:
    key: str
    oracle_reward: float | None = None
    failures: list = field(default_factory=list)  # sentences
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return not self.failures

    def line(self, prefix=""):
        status = "ok  " if self.passed else "FAIL"
        reward = "-" if self.oracle_reward is None else f"{self.oracle_reward:.3f}"
        return f"{status} {prefix}{self.key} oracle={reward}" + (
            "".join(f"\n     {f}" for f in self.failures)
        )

    def to_dict(self):
        return {
            "key": self.key,
            "passed": self.passed,
            "oracle_reward": self.oracle_reward,
            "failures": self.failures,
            "notes": self.notes,
        }


def _score(prepared, final_answer):
    return verify(prepared.world, prepared.variant, final_answer=final_answer, after_seq=prepared.after_seq)


def mutations(steps, world, variant):
    """(name, steps) for each mutation that applies to a solution call list."""
    calls = [s for s in steps if "final" not in s]
    final = [s for s in steps if "final" in s]
    out = []
    if calls:
        out.append(("stop early", calls[:-1] + final))
    writes = [i for i, s in enumerate(steps) if s.get("method") in WRITES and s.get("body")]
    if writes and isinstance(steps[writes[-1]]["body"], dict):
        i = writes[-1]
        dropped, body = _drop_a_field(steps[i]["body"])
        out.append((f"drop {dropped}", [*steps[:i], {**steps[i], "body": body}, *steps[i + 1 :]]))
    victim = _bystander_issue(world, variant)
    if victim:
        destroy = {
            "method": "DELETE",
            "path": f"/rest/api/3/issue/{victim}",
            "query": {"deleteSubtasks": "true"},
        }
        out.append((f"extra delete of {victim}", [*calls, destroy, *final]))
    return out


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


def _bystander_issue(world, variant):
    """An issue the variant never mentions, to delete in a mutation."""
    text = repr(variant.to_dict())
    mentioned = set(re.findall(r"[A-Z][A-Z0-9]+-\d+", text))
    for issue in selectors.entities(world, "issues"):
        if issue["key"] not in mentioned and not issue["subtask"]:
            return issue["key"]
    return None


def check_variant(variant, *, template=None):
    """Run every self-test of one variant; a VariantCheck lists what failed."""
    report = VariantCheck(variant.key)
    try:
        prepared = prepare(variant, template=template)
    except SetupError as err:
        report.failures.append(f"setup failed: {err}")
        return report

    noop = _score(prepared, "")
    if noop.success:
        report.failures.append("the world right after setup already passes (a no-op succeeds)")
    if noop.reward >= LOW:
        report.failures.append(f"a no-op scores {noop.reward:.3f}, not below {LOW}")

    oracle = prepare(variant, template=template)
    try:
        final = run_solution(oracle)
    except (SolverError, KeyError) as err:
        report.failures.append(f"the solution could not run: {err}")
        return report
    verdict = _score(oracle, final)
    report.oracle_reward = verdict.reward
    if verdict.reward < 1.0 or not verdict.success:
        failed = "; ".join(c.detail for c in verdict.checks if not c.passed) or "below 1.0"
        report.failures.append(
            f"the oracle scores {verdict.reward:.3f} (success {verdict.success}): {failed}"
        )

    read = prepare(variant, template=template)
    run_solution(read, [{"method": "GET", "path": "/rest/api/3/myself"}])
    single = _score(read, "")
    if single.success or single.reward >= LOW:
        report.failures.append(f"a single read scores {single.reward:.3f} (success {single.success})")

    solution = variant.solution
    if isinstance(solution, list):
        for name, steps in mutations(oracle.variant.solution, oracle.world, oracle.variant):
            mutant = prepare(variant, template=template)
            answer = run_solution(mutant, steps)
            result = _score(mutant, answer)
            if result.success or result.reward >= 1.0:
                report.failures.append(
                    f"mutation '{name}' still scores {result.reward:.3f} (success {result.success})"
                )
    else:
        report.notes.append("a named solver: no mutations")
    return report
