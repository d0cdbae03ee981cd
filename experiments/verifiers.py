"""The verifier engine: runs a variant's checks on a finished episode and turns them into a
reward.

``verify(world, variant, final_answer=..., format_errors=...)`` reads the world through
simulator.selectors only (it never writes) and returns a Verdict: every check's result (name,
passed, score in [0, 1], weight, required, detail), the reward under the task's preset, and
success — every required check passed. The presets and their weights are documented in
docs/suites.md.
"""

from dataclasses import asdict, dataclass, field

from experiments.checks import CHECK_TYPES, Facts, Outcome
from experiments.suites import DEFAULT_FORMAT_PENALTY
from experiments.templating import TemplateError

# The dense preset's components, paper-style, and the check types each one averages.
DENSE_COMPONENTS = {"arguments": 0.6, "calls": 0.2, "hygiene": 0.2}
COMPONENT_OF = {
    "called": "calls",
    "not_called": "calls",
    "order": "calls",
    "max_calls": "hygiene",
    "no_errors": "hygiene",
    "no_collateral": "hygiene",
}


def component_of(check_type):
    """The dense component a check type counts towards: state and answer checks are the
    arguments, call checks the calls, economy checks the hygiene."""
    return COMPONENT_OF.get(check_type, "arguments")


@dataclass
class CheckResult:
    name: str
    type: str
    passed: bool
    score: float
    weight: float
    required: bool
    detail: str

    def to_dict(self):
        return asdict(self)


@dataclass
class Verdict:
    reward: float
    success: bool
    checks: list
    breakdown: dict = field(default_factory=dict)

    def to_dict(self):
        return {**asdict(self), "checks": [c.to_dict() for c in self.checks]}


def run_check(facts, spec):
    """One check's result; a check whose parameters are still unusable (e.g. a template that
    needed a setup result) fails with a detail saying why instead of stopping the others."""
    ctype = CHECK_TYPES[spec["type"]]
    if any("{{" in str(v) for v in spec["params"].values()):
        outcome = Outcome(0, f"the check still has an unrendered template: {spec['params']}")
    else:
        try:
            outcome = ctype.run(facts, spec["params"])
        except (TemplateError, ValueError, TypeError, KeyError) as err:
            outcome = Outcome(0, f"the check could not run: {type(err).__name__}: {err}")
    return CheckResult(
        name=spec["name"],
        type=spec["type"],
        passed=outcome.passed,
        score=round(outcome.score, 6),
        weight=float(spec.get("weight", 1.0)),
        required=bool(spec.get("required", ctype.required)),
        detail=outcome.detail,
    )


def _weighted_mean(results):
    total = sum(r.weight for r in results)
    if total <= 0:
        return None
    return sum(r.weight * r.score for r in results) / total


def dense_reward(results, *, terminated, components=None):
    """Argument correctness, required calls in order, clean termination and economy, each the
    weighted mean of its checks; components without checks give their weight to the others.
    Returns (reward, {component: {"weight", "score"}})."""
    weights = {**DENSE_COMPONENTS, **(components or {})}
    scores = {}
    for name in weights:
        members = [r for r in results if component_of(r.type) == name]
        if name == "hygiene":  # ending with a final answer is part of a clean episode
            members.append(
                CheckResult("terminated", "terminated", terminated, float(terminated), 1.0, False, "")
            )
        scores[name] = _weighted_mean(members)
    live = {n: w for n, w in weights.items() if scores[n] is not None and w > 0}
    total = sum(live.values())
    reward = sum(w * scores[n] for n, w in live.items()) / total if total else 0.0
    return reward, {
        n: {"weight": round(w / total, 6) if n in live else 0.0, "score": scores[n]}
        for n, w in weights.items()
    }


def weighted_reward(results, weights=None):
    """Σ weight·score / Σ weight over every check (``weights`` overrides by check name)."""
    weights = weights or {}
    adjusted = [CheckResult(**{**r.to_dict(), "weight": weights.get(r.name, r.weight)}) for r in results]
    mean = _weighted_mean(adjusted)
    return 0.0 if mean is None else mean


def verify(world, variant, *, final_answer=None, format_errors=0, after_seq=0):
    """Score a finished episode. ``variant``: a Variant (or its dict); ``final_answer``: the text of
    the agent's final action, None when it never gave one; ``format_errors``: how many of its
    actions could not be parsed; ``after_seq``: calls up to this seq (the task's setup) are not
    the agent's and are left out of the trace."""
    if isinstance(variant, dict):
        from experiments.variants import Variant

        variant = Variant.from_dict(variant)
    facts = Facts(world, final_answer=final_answer, after_seq=after_seq)
    results = [run_check(facts, spec) for spec in variant.checks]
    success = all(r.passed for r in results if r.required)

    reward_spec = variant.reward or {"preset": "dense"}
    preset = reward_spec.get("preset", "dense")
    breakdown = {"preset": preset}
    if preset == "binary":
        raw = 1.0 if success else 0.0
    elif preset == "weighted":
        raw = weighted_reward(results, reward_spec.get("weights"))
    else:
        raw, breakdown["components"] = dense_reward(
            results, terminated=final_answer is not None, components=reward_spec.get("components")
        )
    per_error = reward_spec.get("format_penalty", DEFAULT_FORMAT_PENALTY)
    penalty = per_error * max(0, format_errors)
    reward = max(0.0, raw - penalty)
    breakdown.update(raw=round(raw, 6), format_errors=format_errors, format_penalty=round(penalty, 6))
    return Verdict(reward=round(reward, 6), success=success, checks=results, breakdown=breakdown)
