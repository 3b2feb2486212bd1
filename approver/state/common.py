"""What every part of the Redis state shares: the key prefix and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

PREFIX = "approver:"


def now_iso() -> str:
    """The current time, RFC 3339 in UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
