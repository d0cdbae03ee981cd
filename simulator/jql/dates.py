"""Dates in JQL: absolute values, relative periods (-7d, "4w 2d") and the date functions, all
counted from the world's clock and read in the searching user's time zone."""

import datetime as dt
import re

from simulator.jql.errors import JqlValueError, check_arity
from simulator.jql.grammar import Function

DATE_FUNCTIONS = {  # name: (unit, start?) — endOf* is the last microsecond of the period
    "startofday": ("d", True),
    "endofday": ("d", False),
    "startofweek": ("w", True),
    "endofweek": ("w", False),
    "startofmonth": ("M", True),
    "endofmonth": ("M", False),
    "startofyear": ("y", True),
    "endofyear": ("y", False),
}
_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def moment(clock, tz, ctx, operand):
    """The aware datetime a date value or date function stands for; ``clock()`` is the world's
    time, asked only by what depends on it."""
    if isinstance(operand, Function):
        return date_function(clock(), tz, ctx, operand)
    text = operand.text.strip()
    delta = period(text)
    if delta is not None:
        return clock() + delta
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise JqlValueError(
        f"Date value '{text}' for field '{ctx.typed}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
        "e.g. '-5d', '4w 2d'."
    )


def date_function(now, tz, ctx, function):
    name = function.name.lower()
    if name == "now":
        check_arity(function, 0, 0)
        return now
    if name not in DATE_FUNCTIONS:
        raise ctx.bad_function(function)
    check_arity(function, 0, 1)
    unit_of_function, start = DATE_FUNCTIONS[name]
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit_of_function == "d":
        begin, span = midnight, (0, 1)
    elif unit_of_function == "w":  # weeks start on Sunday, as Jira's default locale has it
        begin, span = midnight - dt.timedelta(days=(local.weekday() + 1) % 7), (0, 7)
    elif unit_of_function == "M":
        begin, span = midnight.replace(day=1), (1, 0)
    else:
        begin, span = midnight.replace(month=1, day=1), (12, 0)
    months, minutes = 0, 0
    if function.args:  # an increment such as -1, "+2w", 1M: months move the period itself
        match = re.fullmatch(r"\s*([-+]?\d+)\s*([yMwdhm]?)\s*", function.args[0])
        if not match:
            raise JqlValueError(
                f"Function '{function.name}' was given the invalid increment '{function.args[0]}'; "
                "use e.g. '-1d', '+2w' or '1M'."
            )
        amount, unit = int(match[1]), match[2] or unit_of_function
        months = {"y": 12 * amount, "M": amount}.get(unit, 0)
        minutes = _MINUTES.get(unit, 0) * amount
    begin = shift(begin, months, 0)
    result = begin if start else shift(begin, *span) - dt.timedelta(microseconds=1)
    return result + dt.timedelta(minutes=minutes)


def period(text):
    """A relative period such as -7d, 4h, "-1w 2d" (m is minutes), or None."""
    match = re.fullmatch(r"([-+]?)((?:\s*\d+\s*[wdhm])+)\s*", text)
    if not match:
        return None
    total = sum(int(n) * _MINUTES[u] for n, u in re.findall(r"(\d+)\s*([wdhm])", match[2]))
    return dt.timedelta(minutes=-total if match[1] == "-" else total)


def shift(when, months, days):
    """``when`` plus calendar months (clamped to the month's length) and days."""
    if months:
        index = when.year * 12 + when.month - 1 + months
        year, month = divmod(index, 12)
        last_day = (dt.date(year + (month == 11), (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
        when = when.replace(year=year, month=month + 1, day=min(when.day, last_day))
    return when + dt.timedelta(days=days)
