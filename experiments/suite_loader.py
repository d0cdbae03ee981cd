"""Reads suite YAML into a SuiteSpec, naming the line and column of every problem.

The text is composed to YAML nodes (not loaded to plain values) so that every key and value
keeps its position; each part of the format is then read by one method here, which records a
Problem for anything wrong and carries on, so one pass reports all the mistakes of a file.
"""

import re

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from experiments.checks.reader import CheckReader
from experiments.solvers import SOLVERS
from experiments.suites import (
    DEFAULT_MAX_TURNS,
    DEFAULT_TEST_FRACTION,
    DEFAULT_VARIANTS,
    PRESETS,
    Problem,
    SplitRule,
    SuiteError,
    SuiteSpec,
    TaskSpec,
)
from experiments.templating import TemplateError, parse
from experiments.yaml_reader import AnyName, kind_of, suggest
from simulator.selectors import ENTITY_KINDS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
BUILTINS = {"split", "index", "task"}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

SUITE_KEYS = ("suite", "description", "version", "defaults", "holdout_families", "tasks")
DEFAULT_KEYS = ("seed", "max_turns", "reward", "variants", "split")
TASK_KEYS = (
    "id",
    "scenario",
    "seed",
    "description",
    "instruction",
    "vars",
    "split",
    "variants",
    "max_turns",
    "setup",
    "expect",
    "trace",
    "reward",
    "solution",
)
STEP_KEYS = ("method", "path", "query", "body", "save", "as")
SPLIT_KEYS = ("holdout", "test_fraction", "seed")
REWARD_KEYS = ("preset", "components", "weights", "format_penalty")
COMPONENTS = ("arguments", "calls", "hygiene")


class SuiteLoader(CheckReader):
    def __init__(self, text):
        super().__init__()
        self.source = text
        self.check_nodes = {}  # id(CheckSpec) -> its YAML node, for problems found later

    def load(self):
        try:
            root = yaml.compose(self.source, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            message = " ".join(p for p in (err.context, err.problem) if p)
            raise SuiteError(
                [Problem(mark.line + 1, mark.column + 1, f"this is not valid YAML: {message}")]
            ) from None
        if root is None:
            raise SuiteError([Problem(1, 1, "the suite is empty; it needs at least 'suite' and 'tasks'")])
        spec = self.suite(root)
        if self.problems:
            raise SuiteError(self.problems)
        return spec

    # --- Helpers ---------------------------------------------------------------------------------

    # --- The suite -------------------------------------------------------------------------------

    def suite(self, root):
        f = self.fields(root, "the suite", known=SUITE_KEYS, required=("suite", "tasks"))
        if f is None:
            return None
        name = self.text(f["suite"][1], "'suite' (the suite's name)", NAME) if "suite" in f else None
        description = self.text(f["description"][1], "'description'") if "description" in f else ""
        version = self.integer(f["version"][1], "'version'", 1) if "version" in f else 1
        defaults = {}
        if "defaults" in f:
            defaults = {
                k: v
                for k, (_, v) in (
                    self.fields(f["defaults"][1], "'defaults'", known=DEFAULT_KEYS) or {}
                ).items()
            }
        tasks, seen = [], {}
        for node in self.items(f["tasks"][1], "'tasks'") if "tasks" in f else []:
            task = self.task(node, defaults)
            if task is None:
                continue
            if task.id in seen:
                self.error(node, f"task id '{task.id}' is used twice (first on line {seen[task.id]})")
            seen.setdefault(task.id, node.start_mark.line + 1)
            tasks.append(task)
        if "tasks" in f and isinstance(f["tasks"][1], SequenceNode) and not f["tasks"][1].value:
            self.error(f["tasks"][1], "'tasks' is empty; a suite needs at least one task")
        families = []
        for node in (
            self.items(f["holdout_families"][1], "'holdout_families'") if "holdout_families" in f else []
        ):
            family = self.text(node, "a held-out family")
            if family is not None and tasks and family not in {t.scenario for t in tasks}:
                self.error(node, f"no task has scenario '{family}'; held-out families name task scenarios")
            families.append(family)
        for task in tasks:
            task.split.family_heldout = task.scenario in families
        return SuiteSpec(
            name=name,
            tasks=tasks,
            description=description or "",
            version=version or 1,
            holdout_families=families,
        )

    # --- A task ----------------------------------------------------------------------------------

    def task(self, node, defaults):
        f = self.fields(node, "a task", known=TASK_KEYS, required=("id", "scenario", "instruction"))
        if f is None or "id" not in f:
            return None
        task_id = self.text(f["id"][1], "a task's 'id'", NAME) or "?"
        where = f"task '{task_id}'"

        def get(key):
            return f[key][1] if key in f else defaults.get(key)

        scenario = self.text(f["scenario"][1], f"{where}: 'scenario'", NAME) if "scenario" in f else None
        seed = self.text(get("seed"), f"{where}: 'seed'", NAME) if get("seed") is not None else None
        if get("seed") is None:
            self.error(node, f"{where} needs a 'seed' (the seed world, e.g. acme) or one under 'defaults'")
        variables = self.vars(f["vars"][1], where) if "vars" in f else {}
        split = self.split(get("split"), variables, where, in_defaults="split" not in f)
        counts = self.variant_counts(get("variants"), where)
        max_turns = (
            self.integer(get("max_turns"), f"{where}: 'max_turns'", 1)
            if get("max_turns") is not None
            else None
        )
        setup = self.steps(f["setup"][1], f"{where}: 'setup'", final=False) if "setup" in f else []
        expect = self.checks(f["expect"][1], "expect", where) if "expect" in f else []
        trace = self.checks(f["trace"][1], "trace", where) if "trace" in f else []
        names = [c.name for c in expect + trace]
        for check in expect + trace:
            if names.count(check.name) > 1:
                self.error(
                    self.check_nodes[id(check)],
                    f"two checks of {where} are named '{check.name}'; give one another 'name'",
                )
        if not expect and not trace and "expect" not in f and "trace" not in f:
            self.error(node, f"{where} has no checks: add 'expect' (state checks) or 'trace' (call checks)")
        reward = (
            self.reward(get("reward"), names, where) if get("reward") is not None else {"preset": "dense"}
        )
        solution = self.solution(f["solution"][1], where) if "solution" in f else None

        defined = set(variables) | BUILTINS
        setup_saves = {s["save"] for s in setup if s.get("save")}
        solution_saves = (
            {s["save"] for s in solution if isinstance(s, dict) and s.get("save")}
            if isinstance(solution, list)
            else set()
        )
        for save in setup_saves | solution_saves:
            if save in defined:
                self.error(node, f"{where}: 'save: {save}' hides the var of that name; pick another name")
        for key in ("instruction", "setup", "expect", "trace"):
            if key in f:
                self.templates(f[key][1], defined | setup_saves, where)
        if "solution" in f:
            self.templates(f["solution"][1], defined | setup_saves | solution_saves, where)
        instruction = self.text(f["instruction"][1], f"{where}: 'instruction'") if "instruction" in f else ""
        description = self.text(f["description"][1], f"{where}: 'description'") if "description" in f else ""
        return TaskSpec(
            id=task_id,
            scenario=scenario or "",
            seed=seed or "",
            instruction=instruction or "",
            description=description or "",
            vars=variables,
            split=split,
            variants=counts,
            max_turns=max_turns or DEFAULT_MAX_TURNS,
            setup=setup,
            expect=expect,
            trace=trace,
            reward=reward,
            solution=solution,
        )

    def templates(self, node, defined, where):
        """Every string under ``node`` must be a good template naming only defined names."""
        if isinstance(node, MappingNode):
            for k, v in node.value:
                self.templates(k, defined, where)
                self.templates(v, defined, where)
        elif isinstance(node, SequenceNode):
            for v in node.value:
                self.templates(v, defined, where)
        elif node.tag.endswith(":str") and "{" in node.value:
            try:
                parts = parse(node.value)
            except TemplateError as err:
                self.error(node, f"bad template in {where}: {err}")
                return
            for ref in parts:
                if not isinstance(ref, str) and ref.name not in defined:
                    known = ", ".join(sorted(defined - BUILTINS)) or "none"
                    self.error(
                        node,
                        f"'{ref.source}' in {where} uses '{ref.name}', which is not defined "
                        f"(vars and saved results: {known})",
                    )

    def vars(self, node, where):
        out = {}
        f = self.fields(node, f"{where}: 'vars'", known=AnyName()) if isinstance(node, MappingNode) else None
        if f is None:
            if not isinstance(node, MappingNode):
                self.error(node, f"{where}: 'vars' should be a mapping of name: values, not {kind_of(node)}")
            return out
        for name, (knode, vnode) in f.items():
            if not IDENTIFIER.match(name) or name in BUILTINS:
                self.error(
                    knode,
                    f"'{name}' cannot be a var name"
                    + (" (it is built in)" if name in BUILTINS else " (letters, digits and _ only)"),
                )
                continue
            if isinstance(vnode, SequenceNode):
                if not vnode.value:
                    self.error(vnode, f"var '{name}' has no values")
                out[name] = self.value(vnode)
            elif isinstance(vnode, MappingNode):
                pool = self.fields(vnode, f"var '{name}'", known=("from", "where"), required=("from",))
                if pool and "from" in pool:
                    kind = self.text(pool["from"][1], f"var '{name}': 'from'")
                    if kind is not None and kind not in ENTITY_KINDS:
                        self.error(
                            pool["from"][1],
                            f"var '{name}' draws from '{kind}', which is not one of "
                            + ", ".join(ENTITY_KINDS),
                        )
                    spec = {"from": kind}
                    if "where" in pool:
                        where_value = self.value(pool["where"][1])
                        if not isinstance(where_value, dict):
                            self.error(
                                pool["where"][1], f"var '{name}': 'where' should be a mapping of field: value"
                            )
                        spec["where"] = where_value
                    out[name] = spec
            else:
                out[name] = [self.value(vnode)]
        return out

    def split(self, node, variables, where, in_defaults):
        if node is None:
            return SplitRule()
        f = self.fields(node, f"{where}: 'split'", known=SPLIT_KEYS) or {}
        holdout = None
        if "holdout" in f:
            holdout = []
            for item in self.items(f["holdout"][1], "'holdout'"):
                name = self.text(item, "a held-out var")
                if name is not None and name not in variables and not in_defaults:
                    self.error(item, f"'{name}' is held out but is not one of the vars of {where}")
                elif name is not None and isinstance(variables.get(name), list) and len(variables[name]) < 2:
                    self.error(item, f"var '{name}' has one value; holding it out needs at least two")
                holdout.append(name)
            if in_defaults:
                holdout = [h for h in holdout if h in variables]
        fraction = DEFAULT_TEST_FRACTION
        if "test_fraction" in f:
            fraction = (
                self.number(f["test_fraction"][1], "'test_fraction'", 0.0, 1.0) or DEFAULT_TEST_FRACTION
            )
        seed = self.integer(f["seed"][1], "the split's 'seed'") if "seed" in f else 0
        return SplitRule(holdout=holdout, test_fraction=fraction, seed=seed or 0)

    def variant_counts(self, node, where):
        counts = dict(DEFAULT_VARIANTS)
        if node is None:
            return counts
        for name, (_, vnode) in (
            self.fields(node, f"{where}: 'variants'", known=("train", "test")) or {}
        ).items():
            value = self.integer(vnode, f"the number of {name} variants")
            if value is not None:
                counts[name] = value
        return counts

    def steps(self, node, where, *, final):
        out = []
        for item in self.items(node, where):
            if final and isinstance(item, MappingNode) and any(k.value == "final" for k, _ in item.value):
                f = self.fields(item, "a final step", known=("final",)) or {}
                if "final" in f:
                    out.append({"final": self.text(f["final"][1], "'final' (the answer)")})
                continue
            f = self.fields(
                item,
                f"a step of {where}",
                known=STEP_KEYS + (("final",) if final else ()),
                required=("method", "path"),
            )
            if f is None:
                continue
            step = {k: self.value(v) for k, (_, v) in f.items()}
            if "method" in f and str(step["method"]).upper() not in METHODS:
                self.error(f["method"][1], f"'{step['method']}' is not an HTTP method ({', '.join(METHODS)})")
            if "path" in f and not (isinstance(step["path"], str) and step["path"].startswith(("/", "{{"))):
                self.error(f["path"][1], "a step's 'path' starts with '/', e.g. /rest/api/3/issue")
            if "query" in f and not isinstance(step["query"], dict):
                self.error(f["query"][1], "a step's 'query' should be a mapping of parameter: value")
            if "save" in f and not (isinstance(step["save"], str) and IDENTIFIER.match(step["save"])):
                self.error(f["save"][1], "'save' names the response for later templates: letters, digits, _")
            if "method" in step and isinstance(step["method"], str):
                step["method"] = step["method"].upper()
            out.append(step)
        return out

    def solution(self, node, where):
        if isinstance(node, MappingNode):
            f = (
                self.fields(node, f"{where}: 'solution'", known=("solver", "args"), required=("solver",))
                or {}
            )
            out = {"solver": self.text(f["solver"][1], "'solver'", IDENTIFIER) if "solver" in f else None}
            if out["solver"] is not None and out["solver"] not in SOLVERS:
                self.error(
                    f["solver"][1],
                    f"unknown solver '{out['solver']}'{suggest(out['solver'], SOLVERS)}; solvers: "
                    + ", ".join(sorted(SOLVERS)),
                )
            if "args" in f:
                out["args"] = self.value(f["args"][1])
                if not isinstance(out["args"], dict):
                    self.error(f["args"][1], "a solver's 'args' should be a mapping")
            return out
        return self.steps(node, f"{where}: 'solution'", final=True)

    def reward(self, node, names, where):
        if isinstance(node, ScalarNode):
            preset = self.text(node, f"{where}: 'reward'")
            if preset is not None and preset not in PRESETS:
                self.error(
                    node,
                    f"unknown reward preset '{preset}'{suggest(preset, PRESETS)}; presets: "
                    + ", ".join(PRESETS),
                )
            return {"preset": preset or "dense"}
        f = self.fields(node, f"{where}: 'reward'", known=REWARD_KEYS) or {}
        out = {"preset": "weighted" if "weights" in f and "preset" not in f else "dense"}
        if "preset" in f:
            out["preset"] = self.reward(f["preset"][1], names, where)["preset"]
        if "format_penalty" in f:
            out["format_penalty"] = self.number(f["format_penalty"][1], "'format_penalty'", 0.0)
        for key, known, preset in (("components", COMPONENTS, "dense"), ("weights", names, "weighted")):
            if key not in f:
                continue
            if out["preset"] != preset:
                self.error(f[key][0], f"'{key}' applies to the '{preset}' preset, not '{out['preset']}'")
            entries = self.fields(f[key][1], f"'{key}'", known=AnyName()) or {}
            out[key] = {}
            for name, (knode, vnode) in entries.items():
                if name not in known:
                    what = "dense reward component" if key == "components" else "check"
                    self.error(
                        knode,
                        f"no {what} is named '{name}'{suggest(name, known)} (there are: "
                        + ", ".join(known)
                        + ")",
                    )
                out[key][name] = self.number(vnode, f"the weight of '{name}'")
        return out
