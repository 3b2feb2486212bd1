"""Injected faults: make the next matching Dashboard calls fail or hang."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Fault:
    """One armed fault; `times=None` keeps it armed until cleared."""

    method: str | None
    path: str
    status: int | None = None
    hang: float | None = None
    times: int | None = 1
    message: str | None = None

    @classmethod
    def build(
        cls,
        method: str | None,
        path: str,
        status: int | None = None,
        hang: float | None = None,
        times: int | None = 1,
        message: str | None = None,
    ) -> Fault:
        """A validated fault; raises ValueError naming the bad argument."""
        if method is not None and not isinstance(method, str):
            raise ValueError("method must be a string, or null for any method")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must be a string starting with '/'")
        if status is None and hang is None:
            raise ValueError("give status or hang (or both)")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError("status must be an HTTP status code (100-599)")
        if hang is not None and (
            isinstance(hang, bool) or not isinstance(hang, int | float) or hang < 0
        ):
            raise ValueError("hang must be a number of seconds >= 0")
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValueError("times must be an integer >= 1, or null for every call")
        if message is not None and not isinstance(message, str):
            raise ValueError("message must be a string")
        method = method.upper() if method and method != "*" else None
        return cls(method, path, status, float(hang) if hang is not None else None, times, message)

    def matches(self, method: str, path: str) -> bool:
        """Whether a call is hit: same method (or any) and `path` as a prefix of the call's path."""
        return (self.method is None or self.method == method.upper()) and path.startswith(self.path)

    def as_dict(self) -> dict:
        """The fault as JSON-ready data."""
        return asdict(self)
