"""What one run of the pipeline comes to, and the errors that end a run."""

from __future__ import annotations

from dataclasses import dataclass

from approver import state as st
from approver.errors import ApproverError
from approver.pipeline.sources import UnknownSource
from approver.tyk.errors import DashboardError

# States from which a recorded approve/deny is carried on rather than decided again.
RESUMABLE = (st.APPLYING, st.DECIDED, st.FAILED)


class ReplicaBehind(ApproverError):
    """A write the next step depends on has not reached a Redis replica (yet)."""


class NotYetReadable(ApproverError):
    """Tyk does not know the request yet; the job is tried again later."""

    retryable = True


# 4xx answers a later try may not get: 404 (the request is gone: still_pending skips it), 408,
# 409 and 429 (busy or conflicting now), 401 and 403 (the service's own secret or
# permissions, which an operator fixes; every request then goes through again).
_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 409, 429})


def permanent(exc: BaseException) -> bool:
    """Whether trying again cannot help: Tyk refused this request as sent (a 4xx about it,
    e.g. 400 "Invalid policy ID."), answered in a shape we cannot read, or the request names
    a portal this service is not configured for."""
    if isinstance(exc, UnknownSource):
        return True
    if not isinstance(exc, DashboardError) or exc.retryable or exc.status is None:
        return False
    return 200 <= exc.status < 300 or (
        400 <= exc.status < 500 and exc.status not in _TRANSIENT_4XX)
# The `rule` of decisions no rule made: a person's (decided_by names them), Tyk's own.
BY_PERSON, IN_TYK = "person", "tyk"


@dataclass(frozen=True)
class Result:
    """What one run of the pipeline did to one key request."""

    request_id: str
    state: str
    outcome: str | None = None
    rule: str | None = None
    reason: str | None = None
    applied_now: bool = False

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}



def describe(exc: Exception) -> str:
    # Our error classes build their messages without secrets; anything else is named only.
    return str(exc) if isinstance(exc, ApproverError) else type(exc).__name__
