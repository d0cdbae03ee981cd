"""Variants: a task with its vars drawn, ready to run.

Drawing is deterministic: the same task, split and index always give the same values, on any
machine (the RNG is seeded with a string, which Python hashes with SHA-512, not the per-process
hash). Held-out vars have their pool cut in two once per task — a test part and a train part —
so no value of a held-out var in a test variant ever appears in a train variant. A task whose
whole family (scenario) the suite holds out has no train variants at all.
"""

import json
import math
import random
from dataclasses import asdict, dataclass, field, replace

from experiments.templating import render, render_value
from simulator import selectors


class VariantError(ValueError):
    """A task whose variants cannot be drawn (e.g. its seed world is not loaded)."""


@dataclass
class Variant:
    task_id: str
    scenario: str
    split: str
    index: int
    seed: str  # the seed world to fork
    values: dict
    instruction: str
    max_turns: int
    setup: list
    expect: list  # CheckSpec dicts, rendered
    trace: list
    reward: dict
    solution: object
    late: list = field(default_factory=list)  # names bound by setup/solution `save:`, not yet known

    @property
    def key(self):
        return f"{self.task_id}/{self.split}/{self.index}"

    @property
    def checks(self):
        return [*self.expect, *self.trace]

    def bind(self, saved):
        """The variant with the results its steps saved (``{name: response JSON}``) filled in."""
        context = {**self.values, **_builtins(self), **saved}
        late = [n for n in self.late if n not in saved]
        return replace(
            self,
            instruction=render(self.instruction, context, late=late),
            setup=render_value(self.setup, context, late=late),
            expect=render_value(self.expect, context, late=late),
            trace=render_value(self.trace, context, late=late),
            solution=render_value(self.solution, context, late=late),
            late=late,
        )

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


def _builtins(variant):
    return {"split": variant.split, "index": variant.index, "task": variant.task_id}


def canonical(value):
    return json.dumps(value, sort_keys=True)


def pools(task, *, world=None):
    """{var: list of values}: literal pools as written (duplicates dropped), entity pools read
    from the task's seed world (or ``world``)."""
    out = {}
    for name, spec in task.vars.items():
        if isinstance(spec, dict) and "from" in spec:
            source = world or selectors.template_world(task.seed)
            if source is None:
                raise VariantError(
                    f"task '{task.id}' draws '{name}' from the seed world '{task.seed}', which is not loaded"
                )
            where = spec.get("where") or {}
            values = [
                e
                for e in selectors.entities(source, spec["from"])
                if all(e.get(k) == v for k, v in where.items())
            ]
            if not values:
                raise VariantError(f"task '{task.id}': no {spec['from']} in '{task.seed}' match {where}")
        else:
            values = list(spec)
        seen, unique = set(), []
        for v in values:
            if canonical(v) not in seen:
                seen.add(canonical(v))
                unique.append(v)
        out[name] = unique
    return out


def split_pools(task, all_pools, split):
    """The pools a split draws from: held-out vars get their train or test part."""
    rule = task.split
    if rule.family_heldout:
        return all_pools
    held = set(all_pools) if rule.holdout is None else set(rule.holdout)
    out = {}
    for name, values in all_pools.items():
        if name not in held or len(values) < 2:
            out[name] = values
            continue
        order = sorted(values, key=canonical)
        random.Random(f"{task.id}|{name}|partition|{rule.seed}").shuffle(order)  # noqa: S311 - not secrets
        n_test = min(len(order) - 1, max(1, math.floor(len(order) * rule.test_fraction + 0.5)))
        out[name] = order[:n_test] if split == "test" else order[n_test:]
    return out


def draw_variants(task, split, *, world=None, count=None):
    """``count`` (default: the task's number for the split) variants of the split."""
    if split not in ("train", "test"):
        raise ValueError(f"split is 'train' or 'test', not {split!r}")
    if task.split.family_heldout and split == "train":
        return []
    count = task.variants.get(split, 0) if count is None else count
    pools_now = split_pools(task, pools(task, world=world), split)
    rng = random.Random(f"{task.id}|{split}|{task.split.seed}")  # noqa: S311 - reproducible draws
    names = sorted(pools_now)
    combos = math.prod(len(pools_now[n]) for n in names) if names else 1
    drawn, seen = [], set()
    for _ in range(count):
        for _attempt in range(50):
            values = {n: rng.choice(pools_now[n]) for n in names}
            if canonical(values) not in seen or len(seen) >= combos:
                break
        seen.add(canonical(values))
        drawn.append(values)
    return [_render(task, split, i, values) for i, values in enumerate(drawn)]


def _render(task, split, index, values):
    from experiments.suites import CheckSpec

    context = {**values, "split": split, "index": index, "task": task.id}
    setup_late = task.saved_names("setup")
    solution_late = task.saved_names("solution")

    def checks(specs):
        out = []
        for spec in specs:
            data = spec.to_dict() if isinstance(spec, CheckSpec) else dict(spec)
            data["params"] = render_value(data["params"], context, late=setup_late)
            out.append(data)
        return out

    return Variant(
        task_id=task.id,
        scenario=task.scenario,
        split=split,
        index=index,
        seed=task.seed,
        values=values,
        instruction=render(task.instruction, context, late=setup_late),
        max_turns=task.max_turns,
        setup=render_value(task.setup, context, late=setup_late),
        expect=checks(task.expect),
        trace=checks(task.trace),
        reward=dict(task.reward),
        solution=render_value(task.solution, context, late=solution_late),
        late=sorted(set(setup_late) | set(solution_late)),
    )
