"""What a query Jira would refuse raises: every error's ``str()`` is the whole 400 message."""


class JqlError(ValueError):
    """A query Jira would refuse with 400; ``str(error)`` is the whole message to show."""

    kind = "value"


class JqlSyntaxError(JqlError):
    """The query does not parse. ``line``/``column`` (1-based) point at the offending token."""

    kind = "syntax"

    def __init__(self, problem, line, column):
        super().__init__(f"Error in the JQL Query: {problem} (line {line}, character {column})")
        self.line, self.column = line, column


class JqlValueError(JqlError):
    """The query parses but names an unknown field, value, function, or misuses an operator."""


class JqlUnboundedError(JqlError):
    kind = "unbounded"


def check_arity(function, least, most):
    """Refuse a call of a JQL function with fewer than ``least`` or more than ``most`` arguments."""
    if not least <= len(function.args) <= most:
        expected = f"'{least}'" if least == most else f"between '{least}' and '{most}'"
        raise JqlValueError(
            f"Function '{function.name}' expected {expected} arguments but got '{len(function.args)}'."
        )
