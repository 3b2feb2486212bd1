"""The JSON Schemas of what the HTTP endpoints accept, loaded once and compiled."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from jsonschema import Draft202012Validator

from approver import validation


@cache
def schema(name: str) -> dict:
    """The schema document `name` (e.g. "tyk-webhook")."""
    return json.loads(files(__package__).joinpath(f"{name}.json").read_text())


@cache
def validator(name: str) -> Draft202012Validator:
    """A compiled validator for schema `name`."""
    return validation.validator(schema(name))


def first_error(name: str, document) -> str | None:
    """A readable description of the first way `document` breaks schema `name`, or None."""
    error = next(iter(validator(name).iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message[:200]}"
