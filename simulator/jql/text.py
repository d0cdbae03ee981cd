"""Text search (``~``): word-based, case-insensitive, with a crude English stemming, over the
summary, the ADF description and the ADF comment bodies, as regular expressions that Python's
``re``, SQLite and PostgreSQL read alike."""

import re

from django.db.models import Exists, F, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IRegex

from simulator.jql.clause import MATCH_NOTHING, any_of
from simulator.jql.errors import JqlValueError
from simulator.jql.grammar import Value
from simulator.models import Comment

# Lucene's English stop words, which Jira's text search drops.
_STOP_WORDS_TEXT = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with"
)
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_SEP = "[^a-zA-Z0-9]"
_ENDINGS = "(e|s|es|d|ed|ing)?"
# In ADF JSON a word must sit inside the value of a "text" key (a text node), after the
# opening quote or a separator (an escape such as \n or \" counts as one).
_ADF_WORD_START = r'"text": ?"(([^"\\]|\\.)*([^a-zA-Z0-9"\\]|\\[^u]))?'


def _stem(word):
    for ending in ("ing", "ed", "es", "s", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _word_pattern(word):
    """The regular expression (valid for Python's re and PostgreSQL alike) of one query word."""
    if "*" in word or "?" in word:
        body = "".join({"*": "[a-zA-Z0-9]*", "?": "[a-zA-Z0-9]"}.get(ch, re.escape(ch)) for ch in word)
        return body if word.endswith("*") else body + f"({_SEP}|$)"
    return f"{re.escape(_stem(word))}{_ENDINGS}({_SEP}|$)"


def _text_patterns(ctx, query):
    """One pattern (without its start anchor) per term of a ``~`` query; all must match."""
    patterns = []
    for phrase, plain in re.findall(r'"([^"]*)"|([^"]+)', query):
        words = re.findall(r"(?:[^\W_]|[*?])+", (phrase or plain).lower())
        for word in words:
            if word[0] in "*?":
                raise JqlValueError(
                    f"The text query '{query}' for field '{ctx.typed}' is not valid: '*' and '?' are not "
                    "allowed as the first character of a wildcard search."
                )
        if phrase:
            if words:
                patterns.append(f"{_SEP}+".join(re.escape(w) for w in words) + f"({_SEP}|$)")
        else:
            kept = [w for w in words if w not in _STOP_WORDS] or words
            patterns.extend(_word_pattern(w) for w in kept)
    return patterns


def _matches(expression, patterns, adf):
    start = _ADF_WORD_START if adf else f"(^|{_SEP})"
    q = Q()
    for pattern in patterns:
        q &= Q(IRegex(expression, start + pattern))
    return q


def text_field(summary=False, description=False, comment=False):
    def compile_(c, ctx):
        body_text = Cast("body", output_field=TextField())
        has_comment = Exists(Comment.objects.filter(issue=OuterRef("pk")))
        no_description = Q(description__isnull=True) | Q(description__content=[])
        if ctx.op in ("is", "is not"):
            if summary:  # every issue has one
                empty = MATCH_NOTHING
            elif description:
                empty = no_description
            else:
                empty = ~has_comment
            return empty if ctx.op == "is" else ~empty
        operand = ctx.single()
        if not isinstance(operand, Value):
            raise ctx.bad_function(operand)
        patterns = _text_patterns(ctx, operand.text)
        if not patterns:
            return MATCH_NOTHING if ctx.positive else ~MATCH_NOTHING
        found, present = [], []
        if summary:
            found.append(_matches(F("summary"), patterns, adf=False))
            present.append(~MATCH_NOTHING)
        if description:
            found.append(
                Q(description__isnull=False) & _matches(Cast("description", TextField()), patterns, adf=True)
            )
            present.append(~no_description)
        if comment:
            rows = Comment.objects.filter(issue=OuterRef("pk")).filter(
                _matches(body_text, patterns, adf=True)
            )
            found.append(Q(Exists(rows)))
            present.append(Q(has_comment))
        return any_of(found) if ctx.positive else any_of(present) & ~any_of(found)

    return compile_
