"""Jira platform: ``POST /jql/parse`` — the syntax tree of queries (``ParsedJqlQuery``) with the
problems each has: syntax errors always; unknown fields, values and functions too with
``validation=strict`` (as errors) or ``warn`` (as warnings); ``none`` checks the syntax only."""

import re

from simulator.handlers.jira_issues import body_dict
from simulator.jql import JqlError, compile_jql, parse_jql
from simulator.jql.grammar import BoolOp, Empty, Function
from simulator.routing import Routes, jira_error

routes = Routes()
API = "/rest/api/{version}"
VALIDATIONS = ("strict", "warn", "none")
_BARE = re.compile(r"[^\s\"'(),=!<>~&|\[\]{}%^$#;?]+")
_RESERVED = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}


def encoded(text):
    """A name or value as it can be written back into a query: bare when it may be, else quoted."""
    if _BARE.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(name):
    return {"name": name, "encodedName": encoded(name)}


def _operand(operand):
    if isinstance(operand, Empty):
        return {"keyword": "empty"}
    if isinstance(operand, Function):
        args = ", ".join(encoded(a) for a in operand.args)
        return {
            "function": operand.name,
            "arguments": list(operand.args),
            "encodedOperand": f"{operand.name}({args})",
        }
    return {"value": operand.text, "encodedValue": encoded(operand.text)}


def clause_json(node):
    """The ``JqlQueryClause`` of a parsed clause or boolean combination."""
    if isinstance(node, BoolOp):
        return {"operator": node.op, "clauses": [clause_json(part) for part in node.parts]}
    if node.is_list:
        items = [_operand(o) for o in node.operands]
        encoded_items = [i.get("encodedValue") or i.get("encodedOperand") or "EMPTY" for i in items]
        operand = {"values": items, "encodedOperand": f"({', '.join(encoded_items)})"}
    else:
        operand = _operand(node.operands[0])
    return {"field": _field(node.field), "operator": node.op, "operand": operand}


def parsed_query(req, text, validation):
    out = {"query": text}
    try:
        where, order = parse_jql(text)
    except JqlError as err:
        out["errors"] = [str(err)]
        return out
    structure = {}
    if where is not None:
        structure["where"] = clause_json(where)
    if order:
        structure["orderBy"] = {
            "fields": [
                {"field": _field(name), "direction": "desc" if desc else "asc"} for name, desc in order
            ]
        }
    out["structure"] = structure
    if validation != "none":
        try:
            compile_jql(req.world, text, user=req.user)
        except JqlError as err:
            out["errors" if validation == "strict" else "warnings"] = [str(err)]
    return out


@routes.post(
    f"{API}/jql/parse",
    operation="parseJqlQueries",
    summary="Parse and validate JQL queries: the syntax tree and the errors of each",
    params=["validation"],
    body_schema={
        "type": "object",
        "required": ["queries"],
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
    },
)
def parse_queries(req):
    validation = (req.param("validation") or "strict").lower()
    if validation not in VALIDATIONS:
        raise jira_error(400, f"The value '{validation}' of 'validation' is not one of strict, warn, none.")
    queries = body_dict(req).get("queries")
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries):
        raise jira_error(400, errors={"queries": "Give the queries to parse as a list of strings."})
    return {"queries": [parsed_query(req, q, validation) for q in queries]}
