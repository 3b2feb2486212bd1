"""Errors raised by the Tyk Dashboard client, one class per failure kind."""

from __future__ import annotations

from approver.errors import ApproverError

MESSAGE_LIMIT = 200

# Tyk CONTRACT §3.1: the known answer to approving a request twice; its HTTP status is
# unconfirmed, so the message alone decides.
ALREADY_PROCESSED_MESSAGE = "key request has already been processed"


def clean_message(message: object) -> str:
    """Tyk's Message as one short line (at most 200 characters)."""
    if message is None:
        return ""
    text = " ".join(str(message).split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return text


class DashboardError(ApproverError):
    """A Tyk Dashboard API call failed."""

    retryable = False

    def __init__(
        self,
        message: object = "",
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = clean_message(message)
        self.status = status
        self.method = method
        # Only ever a path: queries stay out so nothing secret can ride along.
        self.path = path.split("?", 1)[0] if path else path
        if retryable is not None:
            self.retryable = retryable
        super().__init__(str(self))

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.path) if part)
        parts = [where] if where else []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.message:
            parts.append(self.message)
        return ": ".join(parts) or type(self).__name__

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"method={self.method!r}, path={self.path!r})"
        )

    def __reduce__(self):
        kwargs = {
            "status": self.status,
            "method": self.method,
            "path": self.path,
            "retryable": self.retryable,
        }
        return (_rebuild, (type(self), self.message, kwargs))


def _rebuild(cls, message, kwargs):
    """Unpickle an error (RQ stores failed jobs' exceptions)."""
    return cls(message, **kwargs)


class DashboardUnavailable(DashboardError):
    """The Dashboard could not be reached (connection refused or reset, overload)."""

    retryable = True


class DashboardTimeout(DashboardUnavailable):
    """The Dashboard did not connect or answer within the timeout."""


class DashboardServerError(DashboardUnavailable):
    """The Dashboard answered with a 5xx status."""


class Unauthorized(DashboardError):
    """401: the Dashboard API secret was refused."""


class Forbidden(DashboardError):
    """403: the Dashboard user lacks a permission (or Tyk refused the body)."""


class NotFound(DashboardError):
    """404: the object does not exist (or no longer does)."""


class BadRequest(DashboardError):
    """400, 422 or another 4xx: Tyk refused the request as sent."""


class DeleteByHashRefused(BadRequest):
    """Tyk refused to delete a key by its hash: the Dashboard's `enable_delete_key_by_hash`
    is off (tyk-docs `key-hashing.mdx`)."""


class AlreadyProcessed(DashboardError):
    """Tyk says the key request has already been processed."""


def is_already_processed(message: object) -> bool:
    """Whether Tyk's Message says the key request was already processed."""
    return ALREADY_PROCESSED_MESSAGE in clean_message(message).lower()


def error_for(
    status: int | None,
    message: object = "",
    *,
    method: str | None = None,
    path: str | None = None,
) -> DashboardError:
    """The error for an HTTP status and Tyk's Message (not raised)."""
    kwargs = {"status": status, "method": method, "path": path}
    # Tyk CONTRACT §3.1, §7: don't assume a fixed HTTP code per message.
    if is_already_processed(message):
        return AlreadyProcessed(message, **kwargs)
    if status is None:
        return DashboardError(message, **kwargs)
    if status == 401:
        return Unauthorized(message, **kwargs)
    if status == 403:
        return Forbidden(message, **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 429:
        return DashboardUnavailable(message, **kwargs)
    if 400 <= status < 500:
        return BadRequest(message, **kwargs)
    if status >= 500:
        return DashboardServerError(message, **kwargs)
    return DashboardError(message or "unexpected HTTP status", **kwargs)
