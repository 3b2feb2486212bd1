"""The reconciler: pending key requests in Tyk that no decision covers yet get queued."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from approver import enqueue, sources
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
    waiting: int = 0
    overdue: list[str] = field(default_factory=list)
    in_review: int = 0
    left_tyk: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"pending": self.pending, "queued": self.queued,
                "already_queued": self.already_queued, "decided": self.decided,
                "waiting": self.waiting, "overdue": self.overdue,
                "in_review": self.in_review, "left_tyk": self.left_tyk}


def run(rt: Runtime) -> Pass:
    """List pending key requests and queue every one not decided (or not finished applying)."""
    result = Pass()
    pending = [sources.ref(name, native_id) for name, source in rt.sources.items()
               for native_id in source.pending_ids()]
    result.pending = len(pending)
    overdue = {request_id for request_id, _ in rt.store.waiting(due_before=time.time())}
    # Requests left mid-way (decided, applying, failed) are queued again: the pipeline
    # resumes them from the recorded decision. Waiting ones are queued once their deadline
    # passed, so that their on_timeout outcome applies.
    for request_id, state in zip(pending, rt.store.states(pending), strict=True):
        if state in st.FINAL_STATES:
            result.decided += 1
        elif state == st.IN_REVIEW:
            result.in_review += 1
        elif state == st.WAITING and request_id not in overdue:
            result.waiting += 1
        elif not enqueue.ID_PATTERN.match(request_id):
            log.warning("pending key request with an unusable id %r left alone", request_id)
        elif enqueue.decision(rt.queue, request_id,
                              "deadline" if request_id in overdue else "reconciler",
                              rt.settings.retry_delays, reclaim=True):
            result.queued.append(request_id)
            if request_id in overdue:
                result.overdue.append(request_id)
        else:
            result.already_queued += 1
    # An overdue wait whose request left Tyk's pending list (approved or deleted by a
    # human) is queued too: the pipeline sees it is no longer pending and forgets the wait.
    for request_id in sorted(overdue - set(pending)):
        if enqueue.decision(rt.queue, request_id, "deadline", rt.settings.retry_delays,
                            reclaim=True):
            result.overdue.append(request_id)
    # A request left for review (or waiting) that left Tyk's pending list was approved or
    # deleted there by a person: the pipeline records that, and it leaves the inbox.
    for request_id in sorted({rid for rid, _ in rt.store.inbox()} - set(pending) - overdue):
        if enqueue.decision(rt.queue, request_id, "left-pending", rt.settings.retry_delays,
                            reclaim=True):
            result.left_tyk.append(request_id)
    # A decision recorded but not applied (a worker died mid-call, or the job failed for
    # good) is resumed even if Tyk no longer lists the request as pending: the pipeline
    # then sees whether Tyk carried it out and records that.
    for request_id in sorted(set(rt.store.unfinished()) - set(pending)):
        if enqueue.decision(rt.queue, request_id, "resume", rt.settings.retry_delays,
                            reclaim=True):
            result.queued.append(request_id)
    log.info("reconciler: %d pending, %d queued (%d overdue waits), %d already queued, "
             "%d decided, %d waiting, %d in review, %d gone from Tyk's pending list",
             result.pending, len(result.queued), len(result.overdue), result.already_queued,
             result.decided, result.waiting, result.in_review, len(result.left_tyk))
    return result
