"""The JQL grammar (lark, LALR) and the query's syntax tree: ``parse_jql(text)``.

Parsing depends on the text alone, so parsed queries are cached by their text; the syntax tree
is immutable (frozen dataclasses), which makes sharing it between calls and worlds safe.
"""

import functools
import re
from dataclasses import dataclass

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from simulator.jql.errors import JqlSyntaxError

GRAMMAR = r"""
start: [or_expr] [order_by]

?or_expr: and_expr
        | or_expr (_OR | _BARS) and_expr        -> or_
?and_expr: not_expr
         | and_expr (_AND | _AMPS) not_expr     -> and_
?not_expr: atom
         | (_NOT | _BANG) not_expr              -> not_
?atom: "(" or_expr ")"
     | clause

clause: field compare_op operand                 -> compare
      | field _IN in_operand                     -> in_
      | field _NOT _IN in_operand                -> not_in
      | field _IS empty                          -> is_
      | field _IS _NOT empty                     -> is_not

field: WORD | STRING | CF
!compare_op: "=" | "!=" | "~" | "!~" | "<" | ">" | "<=" | ">="
?operand: value | function | empty
?in_operand: list | function
list: "(" item ("," item)* ")"
?item: value | function | empty
value: WORD | STRING
empty: EMPTY | NULL
function: WORD "(" [arg ("," arg)*] ")"
?arg: WORD | STRING

order_by: _ORDER _BY sort_key ("," sort_key)*
sort_key: field [ASC | DESC]

_AND: "and"i
_OR: "or"i
_NOT: "not"i
_AMPS: "&&" | "&"
_BARS: "||" | "|"
_BANG: "!"
_IN: "in"i
_IS: "is"i
EMPTY: "empty"i
NULL: "null"i
_ORDER: "order"i
_BY: "by"i
ASC: "asc"i
DESC: "desc"i
CF.2: /cf\[\d+\]/i
WORD: /[^\s"'(),=!<>~&|\[\]{}%^$#;?]+/i
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)

# Bare words Jira reserves: as a value they must be quoted.
_RESERVED = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}

_OPERATOR_LIST = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # = != ~ !~ < > <= >= in "not in" is "is not"
    operands: tuple  # of Value | Function | Empty; one unless the operator is IN / NOT IN
    is_list: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or" | "not"
    parts: tuple


def _unquote(token):
    if token.type != "STRING":
        return str(token)
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: chr(int(m[1][1:], 16)) if len(m[1]) == 5 else {"n": "\n", "t": "\t"}.get(m[1], m[1]),
        token[1:-1],
    )


def _operand(node):
    if isinstance(node, Token):  # a function argument
        return _unquote(node)
    if node.data == "empty":
        return Empty()
    if node.data == "function":
        name, *args = node.children
        return Function(str(name), tuple(_unquote(a) for a in args if a is not None))
    if node.data == "list":
        return tuple(_operand(child) for child in node.children)
    (token,) = node.children
    if token.type == "WORD" and token.lower() in _RESERVED:
        raise JqlSyntaxError(
            f"Expecting either a value, list or function but got '{token}'. You must surround "
            f"'{token}' in quotation marks to use it as a value.",
            token.line,
            token.column,
        )
    return Value(_unquote(token), token.type == "STRING")


def _field_name(node):
    (token,) = node.children
    return _unquote(token)


def _tree_to_ast(node):
    if node.data in ("or_", "and_", "not_"):
        return BoolOp(node.data.rstrip("_"), tuple(_tree_to_ast(child) for child in node.children))
    field = _field_name(node.children[0])
    if node.data == "compare":
        op = str(node.children[1].children[0])
        operand = _operand(node.children[2])
        if isinstance(operand, Empty) and op in ("=", "!="):  # `= EMPTY` is `IS EMPTY`
            return Clause(field, "is" if op == "=" else "is not", (operand,))
        return Clause(field, op, (operand,))
    if node.data in ("in_", "not_in"):
        operand = _operand(node.children[1])
        items = operand if isinstance(operand, tuple) else (operand,)
        return Clause(field, "in" if node.data == "in_" else "not in", items, is_list=True)
    return Clause(field, "is" if node.data == "is_" else "is not", (Empty(),))


def _shown(token):
    return "the end of the query" if token.type == "$END" else f"'{token}'"


def _syntax_problem(error, text):
    """Jira-like wording for a lark parse error: what was expected, and what came instead."""
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream]
        if char in "\"'":
            rest = text[error.pos_in_stream + 1 :]
            return f"The quoted string '{rest}' has not been completed."
        return (
            f"The character '{char}' is a reserved JQL character. You must enclose it in a string "
            f"or use the escape '\\u{ord(char):04x}' instead."
        )
    token = error.token
    # What the parser would really accept here (the LALR table's lookaheads are merged).
    parser = getattr(error, "interactive_parser", None)
    expected = set(parser.accepts()) if parser is not None else set(error.expected)
    got = _shown(token)
    if "EQUAL" in expected:
        return f"Expecting operator but got {got}. The valid operators are {_OPERATOR_LIST}."
    if expected >= {"WORD", "STRING", "EMPTY"}:
        problem = f"Expecting either a value, list or function but got {got}."
        if token.type.lstrip("_").lower() in _RESERVED:
            problem += f" You must surround '{token}' in quotation marks to use it as a value."
        return problem
    expectations = [
        ({"WORD", "CF"}, "a field name"),
        ({"_IN"}, "'IN'"),
        ({"EMPTY", "NULL"}, "'EMPTY'"),
        ({"_BY"}, "'BY'"),
        ({"ASC", "DESC"}, "either 'ASC', 'DESC' or ','"),
        ({"COMMA", "RPAR"}, "either ',' or ')'"),
        ({"RPAR"}, "')'"),
        ({"_OR"}, "either 'OR' or 'AND'"),
        ({"COMMA"}, "',' or the end of the query"),
        ({"LPAR"}, "either a list or function"),
    ]
    for terminals, what in expectations:
        if expected >= terminals:
            return f"Expecting {what} but got {got}."
    return f"Unexpected {got}."


def _position(error, text):
    token = getattr(error, "token", None)
    if isinstance(error, UnexpectedEOF) or (token is not None and token.type == "$END"):
        lines = text.split("\n")
        return len(lines), len(lines[-1]) + 1
    return error.line, error.column


@functools.lru_cache(maxsize=1024)
def parse_jql(text):
    """The query as (where: Clause | BoolOp | None, order: ((field, descending), ...)).

    Cached by text (a query that does not parse raises again each time, nothing is cached)."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as error:
        if isinstance(error, UnexpectedEOF):
            error.token = Token("$END", "")
            error.expected = set(error.expected)
        line, column = _position(error, text)
        raise JqlSyntaxError(_syntax_problem(error, text), line, column) from None
    where_tree, order_tree = tree.children
    where = _tree_to_ast(where_tree) if where_tree is not None else None
    order = []
    if order_tree is not None:
        for key in order_tree.children:
            field, direction = key.children
            order.append((_field_name(field), direction is not None and direction.lower() == "desc"))
    return where, tuple(order)
