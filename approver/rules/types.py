"""Fact types: what values a fact has, what a rule may compare them with, explicit conversions.

A fact declares one of `text`, `number`, `boolean`, `time`, `duration` or `list of <one of
those>` (or `any`, for a plugin that declared nothing: only `exists` may test it). The
resolver turns a value of another type into unknown; the loader rejects an operator or an
argument that does not fit the fact's type; `as:` in a rule converts a value, and a value
that does not convert is unknown, never false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from approver.rules.values import UNKNOWN, parse_datetime, parse_duration

TEXT, NUMBER, BOOLEAN, TIME, DURATION, ANY = "text", "number", "boolean", "time", "duration", "any"
SCALARS = (TEXT, NUMBER, BOOLEAN, TIME, DURATION)
LIST_OF = "list of "
# Any `list of <scalar>`, in an operator's list of accepted types.
LISTS = "list"
# Labels used before types were checked; plugins written then still load.
_ALIASES = {"string": TEXT, "datetime": TIME, "list[string]": LIST_OF + TEXT}


def normalise(name: str) -> str:
    """The canonical type name for `name`; ValueError when it is no type."""
    name = _ALIASES.get(name, name)
    if name in SCALARS or name == ANY or name.removeprefix(LIST_OF) in SCALARS:
        return name
    raise ValueError(f"unknown fact type {name!r}; types: {', '.join(all_types())}")


def all_types() -> list[str]:
    """Every type name, as documented."""
    return [*SCALARS, *(LIST_OF + t for t in SCALARS), ANY]


def item_type(type_: str) -> str | None:
    """The item type of a list type (`text` for `list of text`), else None."""
    return type_[len(LIST_OF) :] if type_.startswith(LIST_OF) else None


def accepts(types: tuple[str, ...], type_: str) -> bool:
    """Whether an operator accepting `types` may test a fact of type `type_`."""
    return type_ in types or ANY in types or (LISTS in types and item_type(type_) is not None)


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    TEXT: lambda v: type(v) is str,
    NUMBER: _number,
    BOOLEAN: lambda v: type(v) is bool,
    TIME: lambda v: isinstance(v, datetime) and v.tzinfo is not None,
    DURATION: lambda v: type(v) is timedelta,
    ANY: lambda v: True,
}


def conforms(type_: str, value: Any) -> bool:
    """Whether a fact value is of `type_` (a list: a list whose every item is)."""
    item = item_type(type_)
    if item is None:
        return _CHECKS[type_](value)
    check = _CHECKS[item]
    return type(value) in (list, tuple) and all(check(v) for v in value)


def kind(value: Any) -> str:
    """The type a value looks like, for messages: `number` for 4, `text` for '4'."""
    for type_ in (BOOLEAN, NUMBER, TEXT, TIME, DURATION):
        if _CHECKS[type_](value):
            return type_
    if isinstance(value, date):
        return "date"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "null" if value is None else type(value).__name__


def literal(value: Any) -> str:
    """How to write `value` in YAML (text quoted)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _quoted_hint(value: Any) -> str:
    shown = literal(value) if not isinstance(value, str) else value
    return literal(str(shown))


def argument(type_: str, value: Any) -> Any:
    """A rule's value for a fact of `type_`, in that type; TypeError saying what to write."""
    if type_ == ANY:
        return value
    item = item_type(type_)
    if item is not None:
        if not isinstance(value, list):
            raise TypeError(f"write a list of {item} values, like [{_example(item)}]")
        return [argument(item, v) for v in value]
    if isinstance(value, dict | list):
        raise TypeError(f"write one {type_} value, not a {kind(value)}")
    if value is None:
        raise TypeError("null never matches a fact; use {exists: false}")
    if type_ == TEXT:
        if not isinstance(value, str):
            raise TypeError(f"write {_quoted_hint(value)} in quotes")
        return value
    if type_ == NUMBER:
        if isinstance(value, str) and to_number(value) is not UNKNOWN:
            raise TypeError(f"write {value.strip()} without quotes")
        if not _number(value):
            raise TypeError(f"write a number like 10, not {literal(value)}")
        return value
    if type_ == BOOLEAN:
        if isinstance(value, str) and to_boolean(value) is not UNKNOWN:
            raise TypeError(f"write {literal(to_boolean(value))} without quotes")
        if not isinstance(value, bool):
            raise TypeError(f"write true or false, not {literal(value)}")
        return value
    if type_ == TIME:
        parsed = None if isinstance(value, bool | int | float) else parse_datetime(value)
        if parsed is None:
            raise TypeError(
                f"write an ISO 8601 date or time like 2024-01-31 or "
                f"2024-01-31T09:00:00Z, not {literal(value)}"
            )
        return parsed
    seconds = parse_duration(value)
    if seconds is None:
        raise TypeError(f"write a duration like 90s, 30m, 72h or 2d, not {literal(value)}")
    return timedelta(seconds=seconds)


def _example(type_: str) -> str:
    return {TEXT: "'a', 'b'", NUMBER: "1, 2", BOOLEAN: "true", TIME: "2024-01-31",
            DURATION: "72h"}.get(type_, "...")


# -- conversions (`as:` in a rule) -------------------------------------------------------

_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def to_number(value: str) -> Any:
    """'4' -> 4, ' 2.5 ' -> 2.5; UNKNOWN for anything else ('4 people', '1,000', 'nan')."""
    text = value.strip()
    if not _NUMBER_TEXT.fullmatch(text):
        return UNKNOWN
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def to_boolean(value: str) -> Any:
    """'true'/'yes'/'on'/'1' -> True, 'false'/'no'/'off'/'0' -> False (any case); else UNKNOWN."""
    text = value.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else UNKNOWN


def to_time(value: str) -> Any:
    """An ISO 8601 date or time -> a time; else UNKNOWN."""
    parsed = parse_datetime(value)
    return UNKNOWN if parsed is None else parsed


def to_duration(value: str) -> Any:
    """'72h', '30m', '2d', '90s', '1h30m' -> a duration; else UNKNOWN."""
    seconds = parse_duration(value)
    return UNKNOWN if seconds is None else timedelta(seconds=seconds)


def to_text(value: Any) -> Any:
    """A number or boolean written as text: 4 -> '4', True -> 'true'."""
    return literal(value) if isinstance(value, bool | int | float) else UNKNOWN


# target type -> (source types it converts from, converter)
CONVERSIONS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    NUMBER: ((TEXT,), to_number),
    BOOLEAN: ((TEXT,), to_boolean),
    TIME: ((TEXT,), to_time),
    DURATION: ((TEXT,), to_duration),
    TEXT: ((NUMBER, BOOLEAN), to_text),
}


def converter(source: str, target: Any) -> Callable[[Any], Any]:
    """The function converting a `source` value to `target` (UNKNOWN when it does not)."""
    if not isinstance(target, str) or target not in CONVERSIONS:
        raise ValueError(f"as: converts to {', '.join(CONVERSIONS)}, not {target!r}")
    sources, convert = CONVERSIONS[target]
    if source not in sources:
        raise ValueError(f"as: {target} converts {' or '.join(sources)}, and this fact is {source}")
    return convert


def conversion_to(source: str, wanted: tuple[str, ...]) -> str | None:
    """A type among `wanted` that a `source` value converts to, if any."""
    return next((t for t in wanted if source in CONVERSIONS.get(t, ((), None))[0]), None)


def from_json(type_: str, value: Any) -> Any:
    """A recorded or given JSON value back in `type_` (times and durations); else unchanged."""
    if value is None:
        return None
    if type_ == TIME:
        return parse_datetime(value) or value
    if type_ == DURATION:
        if _number(value) and not isinstance(value, bool):
            return timedelta(seconds=value)
        parsed = to_duration(value) if isinstance(value, str) else UNKNOWN
        return value if parsed is UNKNOWN else parsed
    item = item_type(type_)
    if item in (TIME, DURATION) and isinstance(value, list):
        return [from_json(item, v) for v in value]
    return value
