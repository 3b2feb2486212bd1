"""The built-in operators: `fn(actual, prepared) -> bool`, each on the fact types it accepts.

The loader checks the fact's type and prepares the argument in that type, and the resolver
gives only values of the declared type (others are unknown), so each `fn` sees a value and
an argument of matching types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2

from approver.rules.registry import builtin_operator
from approver.rules.types import (
    ANY,
    DURATION,
    LISTS,
    NUMBER,
    SCALARS,
    TEXT,
    TIME,
    argument,
    item_type,
)
from approver.rules.values import UNKNOWN

ORDERED = (NUMBER, TIME, DURATION)
UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


class Pattern:
    """A regular expression run by RE2: linear time in the text, whatever the pattern."""

    __slots__ = ("_regexp", "match_bytes", "pattern")

    _OPTIONS = re2.Options()
    _OPTIONS.log_errors = False  # a bad pattern is reported to the author, not logged by RE2
    _OPTIONS.never_capture = True  # only "does it match" is asked
    _OPTIONS.max_mem = 8 << 20

    def __init__(self, pattern: str):
        try:
            self._regexp = re2.compile(pattern, self._OPTIONS)
        except re2.error as exc:
            raise ValueError(f"RE2 cannot compile {pattern!r}: {_text(exc)}") from None
        self.pattern = pattern
        # The binding's own search builds a Match object per call; asking the compiled RE2
        # directly whether there is a match is several times faster.
        match = getattr(getattr(self._regexp, "_regexp", None), "Match", None)
        # `match_bytes(UNANCHORED, utf8, start, end)` -> spans; None if this binding has none.
        self.match_bytes = match if UNANCHORED is not None else None
        # Plain text between optional ^ and $ needs no regex engine (RE2's `$` is the end).
        literal = _LITERAL.fullmatch(pattern)
        if literal:
            self.match_bytes = None
            self._regexp = _Literal(*literal.groups())

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in `text`."""
        if self.match_bytes is None:
            return self._regexp.search(text) is not None
        data = text.encode("utf-8", "surrogatepass")
        return self.match_bytes(UNANCHORED, data, 0, len(data))[0][0] != -1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


_LITERAL = re.compile(r"(\^?)([A-Za-z0-9 _@,/:;=%'\"#!~&<>`-]*)(\$?)")


class _Literal:
    """A pattern of plain text: `^text$` is equality, `^text` a prefix, `text$` a suffix."""

    __slots__ = ("search",)

    def __init__(self, start: str, text: str, end: str):
        tests: dict[tuple[bool, bool], Any] = {
            (True, True): lambda s: s == text, (True, False): lambda s: s.startswith(text),
            (False, True): lambda s: s.endswith(text), (False, False): lambda s: text in s,
        }
        test = tests[(bool(start), bool(end))]
        self.search = lambda s: test(s) or None


def _text(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _same(expected: Any, type_: str) -> Any:
    return argument(type_, expected)


def _item(expected: Any, type_: str) -> Any:
    # A list fact holds items; a text fact holds substrings.
    return argument(item_type(type_) or type_, expected)


def _members(expected: Any, type_: str) -> frozenset:
    if not isinstance(expected, list):
        raise ValueError("expects a list of values, like [a, b]")
    return frozenset(_item(value, type_) for value in expected)


def _items(expected: Any, type_: str) -> tuple:
    if not isinstance(expected, list) or not expected:
        raise ValueError("expects a non-empty list of values, like [a, b]")
    return tuple(_item(value, type_) for value in expected)


def _texts(expected: Any, type_: str) -> tuple[str, ...]:
    items = expected if isinstance(expected, list) else [expected]
    if not items:
        raise ValueError("expects text or a list of texts")
    return tuple(argument(TEXT, item) for item in items)


def _pattern(expected: Any, type_: str) -> Pattern:
    if not isinstance(expected, str):
        raise ValueError("expects a regular expression in quotes")
    return Pattern(expected)


def _boolean(expected: Any, type_: str) -> bool:
    if not isinstance(expected, bool):
        raise ValueError("expects true or false")
    return expected


@builtin_operator(
    "eq", types=(*SCALARS, LISTS), description="equals the value", prepare=_same,
)
def eq(actual: Any, expected: Any) -> bool:
    """Equals the value."""
    return actual == expected


@builtin_operator(
    "ne", types=(*SCALARS, LISTS), description="differs from the value", prepare=_same,
)
def ne(actual: Any, expected: Any) -> bool:
    """Differs from the value."""
    return actual != expected


@builtin_operator(
    "in",
    types=(TEXT, NUMBER, LISTS),
    description="is one of the listed values (a list fact: every item is, and it is not empty)",
    prepare=_members,
)
def in_(actual: Any, expected: frozenset) -> bool:
    """Is one of the listed values."""
    if isinstance(actual, list | tuple):
        return bool(actual) and all(item in expected for item in actual)
    return actual in expected


@builtin_operator(
    "not_in",
    types=(TEXT, NUMBER, LISTS),
    description="is none of the listed values (a list fact: no item is)",
    prepare=_members,
)
def not_in(actual: Any, expected: frozenset) -> bool:
    """Is none of the listed values."""
    if isinstance(actual, list | tuple):
        return not any(item in expected for item in actual)
    return actual not in expected


@builtin_operator(
    "contains",
    types=(TEXT, LISTS),
    description="a list holds the value, or a text holds the substring",
    prepare=_item,
)
def contains(actual: Any, expected: Any) -> bool:
    """A list holds the value, or a text holds the substring."""
    return expected in actual


@builtin_operator(
    "contains_any",
    types=(TEXT, LISTS),
    description="holds at least one of the listed values",
    prepare=_items,
)
def contains_any(actual: Any, expected: tuple) -> bool:
    """Holds at least one of the listed values."""
    return any(item in actual for item in expected)


@builtin_operator(
    "contains_all",
    types=(TEXT, LISTS),
    description="holds every one of the listed values",
    prepare=_items,
)
def contains_all(actual: Any, expected: tuple) -> bool:
    """Holds every one of the listed values."""
    return all(item in actual for item in expected)


@builtin_operator(
    "matches",
    types=(TEXT,),
    description="a text matches the regular expression somewhere (RE2 syntax, linear time; "
    "anchor with ^ and $)",
    prepare=_pattern,
)
def matches(actual: str, expected: Pattern) -> bool:
    """A text matches the regular expression."""
    return expected.search(actual)


@builtin_operator(
    "starts_with",
    types=(TEXT,),
    description="a text starts with the text (or one of a list of them)",
    prepare=_texts,
)
def starts_with(actual: str, expected: tuple[str, ...]) -> bool:
    """A text starts with the text."""
    return actual.startswith(expected)


@builtin_operator(
    "ends_with",
    types=(TEXT,),
    description="a text ends with the text (or one of a list of them)",
    prepare=_texts,
)
def ends_with(actual: str, expected: tuple[str, ...]) -> bool:
    """A text ends with the text."""
    return actual.endswith(expected)


def _comparison(name: str, words: str, test: Callable[[Any, Any], bool]) -> Callable:
    return builtin_operator(name, types=ORDERED, prepare=_same,
                            description=f"{words} the number, time or duration")(test)


gt = _comparison("gt", "is greater (later, longer) than", lambda a, e: a > e)
gte = _comparison("gte", "is greater (later, longer) than or equal to", lambda a, e: a >= e)
lt = _comparison("lt", "is less (earlier, shorter) than", lambda a, e: a < e)
lte = _comparison("lte", "is less (earlier, shorter) than or equal to", lambda a, e: a <= e)


@builtin_operator(
    "exists",
    types=(ANY,),
    description="`true`: the fact is known; `false`: it is unknown (the only test unknown passes)",
    prepare=_boolean,
    accepts_unknown=True,
)
def exists(actual: Any, expected: bool) -> bool:
    """The fact is known (true) or unknown (false)."""
    return (actual is not UNKNOWN) is expected

