"""Comparing two JSON bodies by shape: key sets, recursively, and value types."""

from __future__ import annotations

from typing import Any

from approver.sandbox.shapes import MAPS


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), "null")


def differences(recorded: Any, answered: Any, path: str = "$", key: str | None = None
                ) -> list[str]:
    """Where `answered` departs from the shape of `recorded`; [] when they agree.

    Objects must have the same keys; objects keyed by data (`shapes.MAPS`) and lists are
    compared value by value against the recording's first value (an empty recorded one
    says nothing of its values). A recorded null stands for Go's nil (slice, map or
    pointer): any value matches it. Numbers are numbers, integer or not.
    """
    if recorded is None:
        return []
    if _kind(recorded) != _kind(answered):
        return [f"{path}: {_kind(answered)} where Tyk answers {_kind(recorded)}"]
    if isinstance(recorded, dict) and key in MAPS:
        first = next(iter(recorded.values()), None)
        return [d for k, v in answered.items()
                for d in differences(first, v, f"{path}[{k!r}]")] if recorded else []
    if isinstance(recorded, dict):
        found = [f"{path}.{k}: missing" for k in recorded if k not in answered]
        found += [f"{path}.{k}: not in Tyk's answer" for k in answered if k not in recorded]
        for k in recorded.keys() & answered.keys():
            found += differences(recorded[k], answered[k], f"{path}.{k}", k)
        return found
    if isinstance(recorded, list) and recorded:
        return [d for i, v in enumerate(answered)
                for d in differences(recorded[0], v, f"{path}[{i}]")]
    return []
