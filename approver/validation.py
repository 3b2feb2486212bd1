"""JSON Schema validators whose `pattern` means what JSON Schema says: `$` ends the string."""

from __future__ import annotations

import re
from functools import cache

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

# JSON Schema patterns are ECMA 262 regexes, where `$` (without the m flag) matches only at
# the very end. jsonschema runs them with Python's re.search, where `$` also matches before
# a trailing "\n": "<id>\n" passed `^[A-Za-z0-9_-]{1,64}$`. Each `$` outside a character
# class and not escaped becomes `\Z`, which has the ECMA meaning.
_DOLLAR = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]|\$")


def whole_string(pattern: str) -> str:
    """`pattern` for Python's re with ECMA 262's end-of-string `$`."""
    return _DOLLAR.sub(lambda m: r"\Z" if m.group() == "$" else m.group(), pattern)


@cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(whole_string(pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def validator(schema: dict) -> Draft202012Validator:
    """A Draft 2020-12 validator for `schema` with whole-string `pattern` semantics."""
    return Validator(schema)
