"""What every simulated API shares: armed faults, the call log, the webhook target.

The sandbox Dashboard (`state.Sandbox`) and the sandbox Developer Portal
(`portal.PortalSandbox`) keep their data apart and inherit this; every public method is
thread-safe.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import deque

from approver.sandbox.faults import Fault

CALL_LOG_LIMIT = 100_000


class Harness:
    """Faults, a call log and a webhook URL (and headers) behind one re-entrant lock."""

    def __init__(self, webhook_url: str | None = None, webhook_headers: dict | None = None):
        self._lock = threading.RLock()
        self._webhook_url = webhook_url or None
        self._webhook_headers: dict[str, str] = dict(webhook_headers or {})
        self._faults: list[Fault] = []
        self._calls: deque[dict] = deque(maxlen=CALL_LOG_LIMIT)
        self._seq = itertools.count(1)
        # Seconds a new record stays unreadable (404, unlisted) after its webhook fired:
        # Tyk may announce a record before it can be read (Tyk CONTRACT §4).
        self.record_delay = 0.0
        self._readable_at: dict = {}

    def set_mode(self, name: str, value) -> None:
        """Switch a Tyk-faithful mode by name (the control API's `PUT /_sandbox/modes`)."""
        if name != "record_delay":
            raise ValueError(f"unknown mode {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError("record_delay must be a number of seconds >= 0")
        with self._lock:
            self.record_delay = float(value)
            if not value:
                self._readable_at.clear()  # no delay: every record readable now

    def modes(self) -> dict:
        """The modes in force."""
        with self._lock:
            return {"record_delay": self.record_delay}

    def refused(self, method: str, path: str) -> str | None:
        """The message of a 403 for a call the API's user may not make, else None."""
        return None

    def created(self, record_id) -> None:
        """Note a new record: unreadable for `record_delay` seconds."""
        with self._lock:
            if self.record_delay > 0:
                self._readable_at[record_id] = time.monotonic() + self.record_delay

    def readable(self, record_id) -> bool:
        """Whether a record can be read yet."""
        with self._lock:
            due = self._readable_at.get(record_id)
            if due is None or time.monotonic() >= due:
                self._readable_at.pop(record_id, None)
                return True
            return False

    # ----- webhook, faults, call log ------------------------------------------------------

    @property
    def webhook_url(self) -> str | None:
        """Where new key requests are announced, or None."""
        with self._lock:
            return self._webhook_url

    def set_webhook_url(self, url: str | None, headers: dict | None = None) -> None:
        """Set (or with None/"" clear) the webhook URL, and its custom headers if given."""
        with self._lock:
            self._webhook_url = url or None
            if headers is not None:
                self._webhook_headers = {str(k): str(v) for k, v in headers.items()}

    @property
    def webhook_headers(self) -> dict[str, str]:
        """The custom headers sent with each webhook (the new portal's only authentication)."""
        with self._lock:
            return dict(self._webhook_headers)

    def add_fault(
        self,
        method: str | None,
        path: str,
        status: int | None = None,
        hang: float | None = None,
        times: int | None = 1,
        message: str | None = None,
    ) -> dict:
        """Arm a fault for the next `times` calls matching method and path prefix."""
        fault = Fault.build(method, path, status, hang, times, message)
        with self._lock:
            self._faults.append(fault)
            return fault.as_dict()

    def faults(self) -> list[dict]:
        """The armed faults."""
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this call, used up by one; None when no fault matches."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return copy.copy(fault)
            return None

    def record_call(self, method: str, path: str, query: dict, status: int) -> None:
        """Append one Dashboard call to the log (never its headers)."""
        with self._lock:
            self._calls.append(
                {
                    "seq": next(self._seq),
                    "method": method,
                    "path": path,
                    "query": dict(query),
                    "status": status,
                    "at": time.time(),
                }
            )

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Logged calls, oldest first; `path` matches as a prefix, `method` in any case."""
        with self._lock:
            return [
                dict(c)
                for c in self._calls
                if (not method or c["method"] == method.upper())
                and (not path or c["path"].startswith(path))
            ]

    def clear_calls(self) -> None:
        """Empty the call log."""
        with self._lock:
            self._calls.clear()

