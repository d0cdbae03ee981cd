"""Running one check, or verifying a hand-made variant, in the tests."""

from experiments.checks import CHECK_TYPES, Facts
from experiments.variants import Variant
from experiments.verifiers import run_check


def check(world, check_type, params, *, final_answer=None, after_seq=0):
    """The CheckResult of one check on a world."""
    spec = {
        "type": check_type,
        "params": params,
        "name": check_type,
        "weight": 1.0,
        "required": CHECK_TYPES[check_type].required,
    }
    return run_check(Facts(world, final_answer=final_answer, after_seq=after_seq), spec)


def variant(expect=(), trace=(), reward=None):
    """A variant with these checks; each check is (type, params) or (type, params, extra keys)."""

    def specs(checks):
        out = []
        for item in checks:
            check_type, params, *extra = item
            spec = {
                "type": check_type,
                "params": params,
                "name": check_type,
                "weight": 1.0,
                "required": CHECK_TYPES[check_type].required,
            }
            spec.update(extra[0] if extra else {})
            out.append(spec)
        return out

    return Variant(
        task_id="t",
        scenario="s",
        split="train",
        index=0,
        seed="acme",
        values={},
        instruction="",
        max_turns=5,
        setup=[],
        expect=specs(expect),
        trace=specs(trace),
        reward=reward or {"preset": "dense"},
        solution=None,
    )
