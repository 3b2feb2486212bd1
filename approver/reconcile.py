"""The reconciler: pending key requests in Tyk that no decision covers yet get queued."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from approver import enqueue
from approver import store as st
from approver.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Pass:
    """What one reconciler pass saw and did."""

    pending: int = 0
    queued: list[str] = field(default_factory=list)
    already_queued: int = 0
    decided: int = 0

    def to_dict(self) -> dict:
        return {"pending": self.pending, "queued": self.queued,
                "already_queued": self.already_queued, "decided": self.decided}


def run(rt: Runtime) -> Pass:
    """List pending key requests and queue every one not decided (or not finished applying)."""
    result = Pass()
    pending = [r.id for r in rt.dashboard.list_key_requests(approved=False)]
    result.pending = len(pending)
    # Requests left mid-way (decided, applying, failed) are queued again: the pipeline
    # resumes them from the recorded decision.
    for request_id, state in zip(pending, rt.store.states(pending), strict=True):
        if state in st.FINAL_STATES:
            result.decided += 1
        elif not enqueue.ID_PATTERN.match(request_id):
            log.warning("pending key request with an unusable id %r left alone", request_id)
        elif enqueue.decision(rt.queue, request_id, "reconciler",
                                   rt.settings.retry_delays):
            result.queued.append(request_id)
        else:
            result.already_queued += 1
    log.info("reconciler: %d pending, %d queued, %d already queued, %d decided",
             result.pending, len(result.queued), result.already_queued, result.decided)
    return result
