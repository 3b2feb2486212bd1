"""Which Dashboard user right each call the approver makes needs (docs/tyk-compatibility.md).

Tyk's `user_permissions` object names areas (`portal`, `policy`, `keys`, …) with the value
`read` or `write`; a user with any area listed may use only the areas listed. The
approver's calls need `portal: write` and `policy: read`.
"""

from __future__ import annotations

import re

# (method, path pattern) -> (area, level). Reads need "read", anything else "write".
_AREAS = (
    (re.compile(r"^/api/portal/policies(/|$)"), "policy"),
    (re.compile(r"^/api/portal/"), "portal"),
    (re.compile(r"^/api/keys(/|$)|^/api/apis/[^/]+/keys(/|$)"), "keys"),
)


def right_for(method: str, path: str) -> tuple[str, str] | None:
    """The (area, level) a Dashboard call needs, or None for a path outside the table."""
    for pattern, area in _AREAS:
        if pattern.search(path):
            return area, "read" if method.upper() in ("GET", "HEAD") else "write"
    return None


def grant(method: str, path: str) -> str | None:
    """The right a Dashboard call needs, as an operator grants it: `'policy: read'`."""
    needed = right_for(method, path)
    return f"'{needed[0]}: {needed[1]}'" if needed else None
