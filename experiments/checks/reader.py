"""Reading the checks of a task from YAML: the check type, its parameters against the type's
declarations (experiments.checks), and the name, weight and required flag every check has."""

import re

from yaml.nodes import MappingNode, SequenceNode

from experiments.checks import CHECK_TYPES, COMMON_KEYS, KINDS
from experiments.checks.trace import allow_problem, pattern_problem
from experiments.suites import CheckSpec, auto_names
from experiments.yaml_reader import NodeReader, kind_of, suggest

SINGLE_REF = re.compile(r"^\{\{[^{}]*\}\}$")


class CheckReader(NodeReader):
    def checks(self, node, section, where):
        specs = []
        for item in self.items(node, f"{where}: '{section}'"):
            if not isinstance(item, MappingNode) or len(item.value) != 1:
                self.error(
                    item,
                    f"each entry of '{section}' is one check, written '- <check type>: "
                    "{parameters}', not " + kind_of(item),
                )
                continue
            knode, vnode = item.value[0]
            name = knode.value
            ctype = CHECK_TYPES.get(name)
            if ctype is None:
                known = sorted(CHECK_TYPES)
                self.error(
                    knode,
                    f"unknown check type '{name}'{suggest(name, known)}; check types: " + ", ".join(known),
                )
                continue
            if (ctype.group == "trace") != (section == "trace"):
                other = "trace" if ctype.group == "trace" else "expect"
                self.error(
                    knode,
                    f"'{name}' is {'an' if ctype.group == 'answer' else 'a'} {ctype.group} check; "
                    f"it belongs under '{other}', not '{section}'",
                )
                continue
            spec = self.check(ctype, vnode)
            if spec is not None:
                specs.append(spec)
                self.check_nodes[id(spec)] = item
        for spec, auto in zip(specs, auto_names([s.type for s in specs]), strict=True):
            spec.name = spec.name or auto
        return specs

    def check(self, ctype, node):
        t = ctype.name
        if not isinstance(node, MappingNode):
            if ctype.shorthand is None:
                self.error(
                    node,
                    f"'{t}' takes a mapping of its parameters ({', '.join(ctype.params)}), "
                    f"not {kind_of(node)}",
                )
                return None
            value = self.value(node)
            self.param(ctype.params[ctype.shorthand], value, node, t, ctype.shorthand)
            return CheckSpec(t, {ctype.shorthand: value}, name="", required=ctype.required)
        f = (
            self.fields(
                node,
                f"check '{t}'",
                known=tuple(ctype.params) + tuple(sorted(COMMON_KEYS)),
                required=[n for n, p in ctype.params.items() if p.required],
            )
            or {}
        )
        params, spec = {}, CheckSpec(t, {}, name="", required=ctype.required)
        for key, (_, vnode) in f.items():
            if key == "name":
                spec.name = self.text(vnode, "a check's 'name'") or ""
            elif key == "weight":
                spec.weight = self.number(vnode, "a check's 'weight'") or 0.0
            elif key == "required":
                spec.required = bool(self.scalar(vnode, "'required'", (bool,), "true or false"))
            else:
                params[key] = self.value(vnode)
                self.param(ctype.params[key], params[key], vnode, t, key)
        if ctype.one_of:
            given = [k for k in ctype.one_of if k in params]
            if len(given) != 1:
                options = " or ".join(f"'{k}'" for k in ctype.one_of)
                self.error(
                    node,
                    f"check '{t}' needs exactly one of {options}" + (f", not {len(given)}" if given else ""),
                )
        if "path" in params and "path" in ctype.params and "{{" not in str(params["path"]):
            problem = pattern_problem(
                {k: params[k] for k in ("method", "path", "query", "body", "status") if k in params}
            )
            if problem:
                self.error(node, f"check '{t}': {problem}")
        spec.params = params
        return spec

    def param(self, param, value, node, check, key):
        """Whether ``value`` fits the parameter's kind; a whole-value template always does."""
        where = f"'{key}' of check '{check}'"
        if isinstance(value, str) and SINGLE_REF.match(value):
            return
        kind = param.kind
        ok = {
            "str": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: isinstance(v, list),
            "dict": lambda v: isinstance(v, dict),
            "strings": lambda v: (
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            ),
            "scalar": lambda v: not isinstance(v, dict | list),
            "any": lambda v: True,
            "call": lambda v: isinstance(v, str | dict),
            "calls": lambda v: isinstance(v, list) and bool(v),
            "allow": lambda v: isinstance(v, list),
        }[kind]
        if not ok(value):
            self.error(node, f"{where} should be {KINDS[kind]}, not {kind_of(node)}")
            return
        if param.keys and isinstance(node, MappingNode):
            for knode, _ in node.value:
                if knode.value not in param.keys:
                    self.error(
                        knode,
                        f"unknown {key} '{knode.value}' in check '{check}'"
                        f"{suggest(str(knode.value), param.keys)}; known: {', '.join(param.keys)}",
                    )
        elements = list(zip(node.value, value, strict=False)) if isinstance(node, SequenceNode) else []
        if kind == "call" and not (isinstance(value, str) and "{{" in value):
            problem = pattern_problem(value)
            if problem:
                self.error(node, problem)
        for enode, element in elements:
            problem = (
                pattern_problem(element)
                if kind == "calls"
                else allow_problem(element)
                if kind == "allow"
                else None
            )
            if problem and not (isinstance(element, str) and SINGLE_REF.match(element)):
                self.error(enode, problem)
