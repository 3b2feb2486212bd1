"""The built-in operators; each is `fn(actual, prepared) -> bool`, arguments checked at load."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from numbers import Number
from typing import Any

from approver.rules.registry import BUILTINS, operator
from approver.rules.values import UNKNOWN, parse_datetime


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset)


def _scalar(expected: Any) -> Any:
    if isinstance(expected, dict):
        raise ValueError("expects a single value, not a mapping")
    return expected


def _list(expected: Any) -> tuple:
    if not isinstance(expected, list):
        raise ValueError("expects a list")
    for item in expected:
        if isinstance(item, dict | list):
            raise ValueError("expects a list of plain values")
    return tuple(expected)


def _member_set(expected: Any) -> frozenset:
    return frozenset(_list(expected))


def _string_or_list(expected: Any) -> tuple[str, ...]:
    items = expected if isinstance(expected, list) else [expected]
    if not items or not all(isinstance(i, str) for i in items):
        raise ValueError("expects a string or a list of strings")
    return tuple(items)


def _regex(expected: Any) -> re.Pattern:
    if not isinstance(expected, str):
        raise ValueError("expects a regular expression string")
    try:
        return re.compile(expected)
    except re.error as exc:
        raise ValueError(f"bad regular expression {expected!r}: {exc}") from None


def _ordered(expected: Any) -> Number | datetime:
    if isinstance(expected, bool):
        raise ValueError("expects a number or a date/time")
    if isinstance(expected, int | float):
        return expected
    parsed = parse_datetime(expected)
    if parsed is None:
        raise ValueError(f"expects a number or an ISO 8601 date/time, got {expected!r}")
    return parsed


def _boolean(expected: Any) -> bool:
    if not isinstance(expected, bool):
        raise ValueError("expects true or false")
    return expected


@operator("eq", description="equals the value", prepare=_scalar, registry=BUILTINS)
def eq(actual: Any, expected: Any) -> bool:
    """Equals the value."""
    return actual == expected


@operator("ne", description="differs from the value", prepare=_scalar, registry=BUILTINS)
def ne(actual: Any, expected: Any) -> bool:
    """Differs from the value."""
    return actual != expected


@operator(
    "in",
    description="is one of the listed values (a list fact: every item is)",
    prepare=_member_set,
    registry=BUILTINS,
)
def in_(actual: Any, expected: frozenset) -> bool:
    """Is one of the listed values."""
    if _is_list(actual):
        return bool(actual) and all(_hashable_in(item, expected) for item in actual)
    return _hashable_in(actual, expected)


@operator(
    "not_in",
    description="is none of the listed values (a list fact: no item is)",
    prepare=_member_set,
    registry=BUILTINS,
)
def not_in(actual: Any, expected: frozenset) -> bool:
    """Is none of the listed values."""
    if _is_list(actual):
        return not any(_hashable_in(item, expected) for item in actual)
    return not _hashable_in(actual, expected)


def _hashable_in(item: Any, members: frozenset) -> bool:
    try:
        return item in members
    except TypeError:  # unhashable: a dict or list never equals a listed plain value
        return False


def _contains_one(actual: Any, item: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(item, str) and item in actual
    if _is_list(actual) or isinstance(actual, dict):
        return item in actual
    return False


@operator(
    "contains",
    description="a list holds the value, or a string holds the substring",
    prepare=_scalar,
    registry=BUILTINS,
)
def contains(actual: Any, expected: Any) -> bool:
    """A list holds the value, or a string holds the substring."""
    return _contains_one(actual, expected)


@operator(
    "contains_any",
    description="holds at least one of the listed values",
    prepare=_list,
    registry=BUILTINS,
)
def contains_any(actual: Any, expected: tuple) -> bool:
    """Holds at least one of the listed values."""
    return any(_contains_one(actual, item) for item in expected)


@operator(
    "contains_all",
    description="holds every one of the listed values",
    prepare=_list,
    registry=BUILTINS,
)
def contains_all(actual: Any, expected: tuple) -> bool:
    """Holds every one of the listed values."""
    return all(_contains_one(actual, item) for item in expected)


@operator(
    "matches",
    description="a string matches the regular expression (Python `re.search`; anchor with ^ $)",
    prepare=_regex,
    registry=BUILTINS,
)
def matches(actual: Any, expected: re.Pattern) -> bool:
    """A string matches the regular expression."""
    return isinstance(actual, str) and expected.search(actual) is not None


@operator(
    "starts_with",
    description="a string starts with the text (or one of a list of them)",
    prepare=_string_or_list,
    registry=BUILTINS,
)
def starts_with(actual: Any, expected: tuple[str, ...]) -> bool:
    """A string starts with the text."""
    return isinstance(actual, str) and actual.startswith(expected)


@operator(
    "ends_with",
    description="a string ends with the text (or one of a list of them)",
    prepare=_string_or_list,
    registry=BUILTINS,
)
def ends_with(actual: Any, expected: tuple[str, ...]) -> bool:
    """A string ends with the text."""
    return isinstance(actual, str) and actual.endswith(expected)


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, expected: Any) -> bool:
        if isinstance(expected, datetime):
            actual = parse_datetime(actual)
            return actual is not None and test(actual, expected)
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return test(actual, expected)

    return compare


for _name, _words, _test in (
    ("gt", "is greater (later) than", lambda a, e: a > e),
    ("gte", "is greater (later) than or equal to", lambda a, e: a >= e),
    ("lt", "is less (earlier) than", lambda a, e: a < e),
    ("lte", "is less (earlier) than or equal to", lambda a, e: a <= e),
):
    operator(
        _name,
        description=f"{_words} the number or ISO 8601 date/time",
        prepare=_ordered,
        registry=BUILTINS,
    )(_compare(_test))


@operator(
    "exists",
    description="`true`: the fact is known; `false`: it is unknown (the only test unknown passes)",
    prepare=_boolean,
    accepts_unknown=True,
    registry=BUILTINS,
)
def exists(actual: Any, expected: bool) -> bool:
    """The fact is known (true) or unknown (false)."""
    return (actual is not UNKNOWN) is expected
