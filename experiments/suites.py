"""Task suites: the YAML format in and out, and saving a suite to the database.

``load_suite(text)`` validates and returns a ``SuiteSpec`` (or raises ``SuiteError`` naming the
line and column of every problem); ``dump_suite(spec)`` writes it back (loading that gives the
same spec); ``save_suite(text)`` stores it as a TaskSuite with its Tasks; ``variants(task,
split)`` draws a task's variants (see experiments/variants.py). The format is documented in
docs/suites.md.
"""

import hashlib
from dataclasses import asdict, dataclass, field

import yaml

from experiments.checks import CHECK_TYPES

PRESETS = ("binary", "dense", "weighted")
SPLITS = ("train", "test")
DEFAULT_VARIANTS = {"train": 20, "test": 5}
DEFAULT_MAX_TURNS = 10
DEFAULT_TEST_FRACTION = 0.25
DEFAULT_FORMAT_PENALTY = 0.1


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    message: str

    def __str__(self):
        return f"line {self.line}, column {self.column}: {self.message}"


class SuiteError(ValueError):
    """A suite that does not load; ``problems`` lists each with its line and column (1-based)."""

    def __init__(self, problems):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class CheckSpec:
    type: str
    params: dict
    name: str
    weight: float = 1.0
    required: bool = True

    @property
    def group(self):
        return CHECK_TYPES[self.type].group

    def to_dict(self):
        return asdict(self)

    def to_yaml(self, auto_name):
        body = dict(self.params)
        if self.name != auto_name:
            body["name"] = self.name
        if self.weight != 1.0:
            body["weight"] = self.weight
        if self.required != CHECK_TYPES[self.type].required:
            body["required"] = self.required
        shorthand = CHECK_TYPES[self.type].shorthand
        if list(body) == [shorthand] and not isinstance(body[shorthand], dict):
            return {self.type: body[shorthand]}  # `max_calls: 6`, as people write it
        return {self.type: body}


@dataclass
class SplitRule:
    holdout: list | None = None  # the vars whose values test variants never share with train; None = all
    test_fraction: float = DEFAULT_TEST_FRACTION
    seed: int = 0
    family_heldout: bool = False  # the suite holds out this task's whole family (scenario)

    def to_yaml(self):
        out = {}
        if self.holdout is not None:
            out["holdout"] = list(self.holdout)
        if self.test_fraction != DEFAULT_TEST_FRACTION:
            out["test_fraction"] = self.test_fraction
        if self.seed:
            out["seed"] = self.seed
        return out


@dataclass
class TaskSpec:
    id: str
    scenario: str
    seed: str
    instruction: str
    description: str = ""
    vars: dict = field(default_factory=dict)
    split: SplitRule = field(default_factory=SplitRule)
    variants: dict = field(default_factory=lambda: dict(DEFAULT_VARIANTS))
    max_turns: int = DEFAULT_MAX_TURNS
    setup: list = field(default_factory=list)
    expect: list = field(default_factory=list)  # CheckSpec
    trace: list = field(default_factory=list)  # CheckSpec
    reward: dict = field(default_factory=lambda: {"preset": "dense"})
    solution: object = None  # a list of steps, or {"solver": name, "args": {...}}

    @property
    def checks(self):
        return [*self.expect, *self.trace]

    def saved_names(self, section):
        """Names bound by ``save:`` on steps, known only once those steps have run."""
        steps = list(self.setup)
        if section == "solution" and isinstance(self.solution, list):
            steps += self.solution
        return [s["save"] for s in steps if isinstance(s, dict) and s.get("save")]

    def to_dict(self):
        """JSON for Task.spec."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["split"] = SplitRule(**data.get("split", {}))
        data["expect"] = [CheckSpec(**c) for c in data.get("expect", [])]
        data["trace"] = [CheckSpec(**c) for c in data.get("trace", [])]
        return cls(**data)

    def to_yaml(self):
        out = {"id": self.id, "scenario": self.scenario, "seed": self.seed}
        if self.description:
            out["description"] = self.description
        out["instruction"] = self.instruction
        out["max_turns"] = self.max_turns
        out["variants"] = dict(self.variants)
        if self.vars:
            out["vars"] = self.vars
        if self.split.to_yaml():
            out["split"] = self.split.to_yaml()
        if self.setup:
            out["setup"] = self.setup
        for section in ("expect", "trace"):
            checks = getattr(self, section)
            if checks:
                names = auto_names([c.type for c in checks])
                out[section] = [c.to_yaml(n) for c, n in zip(checks, names, strict=True)]
        out["reward"] = self.reward["preset"] if set(self.reward) == {"preset"} else self.reward
        if self.solution is not None:
            out["solution"] = self.solution
        return out


def auto_names(types):
    """Default check names: the type, then type#2, type#3 for repeats within a section."""
    seen, names = {}, []
    for t in types:
        seen[t] = seen.get(t, 0) + 1
        names.append(t if seen[t] == 1 else f"{t}#{seen[t]}")
    return names


@dataclass
class SuiteSpec:
    name: str
    tasks: list
    description: str = ""
    version: int = 1
    holdout_families: list = field(default_factory=list)

    def task(self, task_id):
        return next(t for t in self.tasks if t.id == task_id)


def load_suite(text):
    """Parse and validate a suite; raises SuiteError listing each problem with line and column."""
    from experiments.suite_loader import SuiteLoader

    return SuiteLoader(text).load()


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_suite(spec):
    """The suite as YAML text; ``load_suite`` of it gives an equal SuiteSpec."""
    out = {"suite": spec.name}
    if spec.description:
        out["description"] = spec.description
    out["version"] = spec.version
    if spec.holdout_families:
        out["holdout_families"] = list(spec.holdout_families)
    out["tasks"] = [t.to_yaml() for t in spec.tasks]
    return yaml.dump(
        out, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def source_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()


def save_suite(text, *, builtin=False):
    """Validate a suite and store it: the TaskSuite (created or updated by name) and one Task per
    task (tasks no longer in the suite are removed). Raises SuiteError; returns the TaskSuite."""
    from django.db import transaction

    from experiments.models import Task, TaskSuite

    spec = load_suite(text)
    with transaction.atomic():
        suite, _ = TaskSuite.objects.update_or_create(
            name=spec.name,
            defaults={
                "description": spec.description,
                "source": text,
                "version": spec.version,
                "source_hash": source_hash(text),
                "builtin": builtin,
            },
        )
        suite.tasks.exclude(task_id__in=[t.id for t in spec.tasks]).delete()
        for position, task in enumerate(spec.tasks):
            Task.objects.update_or_create(
                suite=suite,
                task_id=task.id,
                defaults={
                    "position": position,
                    "scenario": task.scenario,
                    "seed": task.seed,
                    "spec": task.to_dict(),
                    "split_rule": asdict(task.split),
                },
            )
    return suite


def variants(task_spec, split, *, world=None, count=None):
    """The task's variants for a split ("train" or "test"), drawn deterministically; see
    experiments.variants.draw_variants."""
    from experiments.variants import draw_variants

    return draw_variants(task_spec, split, world=world, count=count)
