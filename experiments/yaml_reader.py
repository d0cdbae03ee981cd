"""Reading YAML nodes with their positions: the helpers the suite loader is built on.

Values are read from composed nodes (not plain loaded values) so that every problem can name
the line and column of the key or value it is about. Each helper records a Problem and returns
None instead of raising, so one pass reports every mistake of a file.
"""

import datetime as dt
import difflib

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from experiments.suites import Problem


def kind_of(node):
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    return {
        "null": "nothing (null)",
        "bool": f"'{node.value}' (true/false)",
        "int": f"the number {node.value}",
        "float": f"the number {node.value}",
    }.get(tag, f"'{node.value}'")


def suggest(word, known):
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plain(value):
    """YAML values as JSON: dates as ISO strings."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


class AnyName(tuple):
    """The known keys of a mapping whose keys are names the user picks (vars, weights)."""

    def __contains__(self, item):
        return True


class NodeReader:
    def __init__(self):
        self.problems = set()
        self._constructor = yaml.SafeLoader("")

    def error(self, node, message):
        self.problems.add(Problem(node.start_mark.line + 1, node.start_mark.column + 1, message))

    def value(self, node):
        try:
            return plain(self._constructor.construct_object(node, deep=True))
        except yaml.YAMLError as err:
            self.error(node, f"this value cannot be read: {getattr(err, 'problem', err)}")
            return None

    def fields(self, node, where, *, known, required=()):
        """{key: (key node, value node)} of a mapping, reporting unknown, repeated, missing keys."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{where} should be a mapping (keys: {', '.join(known)}), not {kind_of(node)}")
            return None
        out = {}
        for knode, vnode in node.value:
            name = knode.value if isinstance(knode, ScalarNode) else None
            if not isinstance(name, str):
                self.error(knode, f"keys in {where} are plain names")
            elif name in out:
                self.error(knode, f"'{name}' appears twice in {where}")
            elif name not in known:
                self.error(
                    knode,
                    f"unknown key '{name}' in {where}{suggest(name, known)}; known keys: " + ", ".join(known),
                )
            else:
                out[name] = (knode, vnode)
        for name in required:
            if name not in out:
                self.error(node, f"{where} is missing '{name}'")
        return out

    def scalar(self, node, where, types, what):
        if not isinstance(node, ScalarNode):
            self.error(node, f"{where} should be {what}, not {kind_of(node)}")
            return None
        value = self.value(node)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            self.error(node, f"{where} should be {what}, not {kind_of(node)}")
            return None
        return value

    def text(self, node, where, pattern=None):
        value = self.scalar(node, where, (str,), "a string")
        if value is not None and pattern is not None and not pattern.match(value):
            self.error(node, f"{where} '{value}' should be letters, digits, '-', '_' or '.'")
            return None
        return value

    def integer(self, node, where, minimum=0):
        value = self.scalar(node, where, (int,), "a whole number")
        if value is not None and value < minimum:
            self.error(node, f"{where} should be at least {minimum}, not {value}")
            return None
        return value

    def number(self, node, where, minimum=0.0, below=None):
        value = self.scalar(node, where, (int, float), "a number")
        if value is not None and (value < minimum or (below is not None and value >= below)):
            limit = f"at least {minimum}" + (f" and below {below}" if below is not None else "")
            self.error(node, f"{where} should be {limit}, not {value}")
            return None
        return value

    def items(self, node, where):
        if not isinstance(node, SequenceNode):
            self.error(node, f"{where} should be a list, not {kind_of(node)}")
            return []
        return node.value
