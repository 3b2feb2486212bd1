"""Tyk's answer shapes, taken from recorded answers, and records projected onto them.

A shape ("skeleton") is a recorded answer with its values replaced by their JSON types:
`"str"`, `"num"`, `"bool"`, `"null"`; objects keep their keys, lists their first item's
shape. Objects Tyk keys by data (a developer's `keys`, a policy's `access_rights`, …) are
`{"*": <shape of a value>}`. `shapes.json` holds one per answer and Tyk version, keyed by
route and variant; the contract tests check it against the recordings
(`tests/fixtures/tyk/`) and the sandbox's answers against both.

The sandbox keeps full records and answers each through `project`: the keys the shape
has, in its order, no others; a key the record lacks gets its type's zero value, as Go's
JSON encoder writes a zero field.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# Objects whose keys are data (ids, names), not fields.
MAPS = frozenset({"keys", "api_keys", "subscriptions", "fields", "oauth_clients",
                  "access_rights", "meta_data"})
ANY = "*"
_ZERO = {"str": "", "num": 0, "bool": False, "null": None}


def skeleton(value: Any, key: str | None = None) -> Any:
    """The shape of a JSON value (see the module's docstring)."""
    if isinstance(value, dict):
        if key in MAPS:
            first = next(iter(value.values()), None)
            return {ANY: skeleton(first) if value else None}
        return {k: skeleton(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    return "str"


def project(value: Any, shape: Any, key: str | None = None) -> Any:
    """`value` with exactly the keys of `shape`, recursively; missing keys get zero values."""
    if isinstance(shape, dict):
        value = value if isinstance(value, dict) else {}
        if key in MAPS or ANY in shape:
            inner = shape.get(ANY)
            return {k: v if inner is None else project(v, inner) for k, v in value.items()}
        return {k: project(value[k], s, k) if k in value else _zero(s)
                for k, s in shape.items()}
    if isinstance(shape, list):
        items = value if isinstance(value, list) else []
        return [project(v, shape[0]) for v in items] if shape else list(items)
    return value


def _zero(shape: Any) -> Any:
    if isinstance(shape, dict):
        return {} if ANY in shape else {k: _zero(s) for k, s in shape.items()}
    if isinstance(shape, list):
        return []
    return _ZERO.get(shape)


@cache
def catalogue() -> dict:
    """Every recorded shape: {service: {route: {variant: shape}}}, first variant the default."""
    text = resources.files("approver.sandbox").joinpath("shapes.json").read_text("utf-8")
    return json.loads(text)


class Shapes:
    """Which variant each route answers in (the first recorded one unless chosen)."""

    def __init__(self, service: str):
        self.service = service
        self.chosen: dict[str, str] = {}

    def routes(self) -> dict[str, list[str]]:
        """Every route with a recorded shape and its variants."""
        return {route: list(variants) for route, variants in catalogue()[self.service].items()}

    def choose(self, route: str, variant: str | None) -> None:
        """Answer `route` in `variant` (None: the default); ValueError if unknown."""
        variants = catalogue()[self.service].get(route)
        if variants is None:
            raise ValueError(f"no recorded shape for {route!r}")
        if variant is None:
            self.chosen.pop(route, None)
        elif variant not in variants:
            raise ValueError(f"{route!r} has no variant {variant!r}: {', '.join(variants)}")
        else:
            self.chosen[route] = variant

    def variant(self, route: str) -> str:
        variants = catalogue()[self.service][route]
        return self.chosen.get(route) or next(iter(variants))

    def render(self, route: str, record: Any) -> Any:
        """`record` in the shape of the route's chosen variant."""
        return project(record, catalogue()[self.service][route][self.variant(route)])
