"""The reconciler: pending key requests in Tyk that no decision covers yet get queued."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from approver import state as st
from approver.pipeline import enqueue, requeue, sources
from approver.pipeline.decide.followup import redo_lost
from approver.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 100  # pending requests looked up in Redis per round trip
# Job states that will run by themselves: nothing to queue. Any other job (failed,
# finished, stopped, or started by a worker that may have died) is looked at closely.
_WILL_RUN = frozenset({b"queued", b"scheduled", b"deferred"})


@dataclass
class Pass:
    """What one reconciler pass saw and did."""

    pending: int = 0
    queued: list[str] = field(default_factory=list)
    already_queued: int = 0
    decided: int = 0
    waiting: int = 0
    overdue: list[str] = field(default_factory=list)
    trimmed: dict = field(default_factory=dict)
    in_review: int = 0
    left_tyk: list[str] = field(default_factory=list)
    followed_up: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"pending": self.pending, "queued": self.queued,
                "already_queued": self.already_queued, "decided": self.decided,
                "waiting": self.waiting, "overdue": self.overdue, "trimmed": self.trimmed,
                "in_review": self.in_review, "left_tyk": self.left_tyk,
                "followed_up": self.followed_up, "stranded": self.stranded}


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def run(rt: Runtime) -> Pass:
    """List pending key requests and queue every one not decided (or not finished applying).

    Tyk's pending list is read page by page and looked up in Redis a batch at a time
    (two pipelined reads per request: its state and its job's status); only a request
    with neither a final state nor a job that will run is queued. A pass's cost beyond
    reading the list does not grow with the requests it has already queued or decided.
    """
    result = Pass()
    # A job can be "queued" in no queue (its pop's answer lost as Redis stopped): with the
    # queue empty, every "queued" job is looked at closely; else a later pass does it.
    idle = rt.queue.count == 0
    overdue = {request_id for request_id, _ in rt.store.waiting(due_before=time.time())}
    unfinished = set(rt.store.unfinished())
    inbox = {request_id for request_id, _ in rt.store.inbox()}
    listed = set()  # of the overdue, unfinished and inbox requests, those Tyk lists
    pending = (sources.ref(name, native_id) for name, source in rt.sources.items()
               for native_id in source.pending_ids())
    for batch in _batches(pending, BATCH):
        result.pending += len(batch)
        listed.update(r for r in batch if r in overdue or r in unfinished or r in inbox)
        jobs = enqueue.job_statuses(rt.queue, batch)
        for request_id, state, job in zip(batch, rt.store.states(batch), jobs, strict=True):
            if idle and job == b"queued":
                job = None  # not to be trusted: enqueue.decision's reclaim checks it
            _reconcile_one(rt, result, request_id, state, job, request_id in overdue)
    # An overdue wait whose request left Tyk's pending list (approved or deleted by a
    # human) is queued too: the pipeline sees it is no longer pending and forgets the wait.
    for request_id in sorted(overdue - listed):
        if enqueue.decision(rt.queue, request_id, "deadline", rt.settings.retry_delays,
                            reclaim=True):
            result.overdue.append(request_id)
    # A request left for review (or waiting) that left Tyk's pending list was approved or
    # deleted there by a person: the pipeline records that, and it leaves the inbox.
    for request_id in sorted(inbox - listed - overdue):
        if enqueue.decision(rt.queue, request_id, "left-pending", rt.settings.retry_delays,
                            reclaim=True):
            result.left_tyk.append(request_id)
    # A decision recorded but not applied (a worker died mid-call, or the job failed for
    # good) is resumed even if Tyk no longer lists the request as pending: the pipeline
    # then sees whether Tyk carried it out and records that.
    for request_id in sorted(unfinished - listed):
        if enqueue.decision(rt.queue, request_id, "resume", rt.settings.retry_delays,
                            reclaim=True):
            result.queued.append(request_id)
    # A decision recorded whose notifications (or billing check) a crash kept from being
    # queued: queued now. Jobs a lost pop answer left in no queue (billing events,
    # notifications): queued again, once the queues are idle.
    result.followed_up = redo_lost(rt)
    notify_queue = enqueue.notify_queue(rt.queue)
    if idle and notify_queue.count == 0:
        result.stranded = requeue.requeue_stranded([rt.queue, notify_queue])
    result.trimmed = rt.store.trim()
    log.info("reconciler: %d pending, %d queued (%d overdue waits), %d already queued, "
             "%d decided, %d waiting, %d in review, %d gone from Tyk's pending list; "
             "retention dropped %s", result.pending, len(result.queued), len(result.overdue),
             result.already_queued, result.decided, result.waiting, result.in_review,
             len(result.left_tyk), result.trimmed)
    return result


def _reconcile_one(rt: Runtime, result: Pass, request_id: str, state: str | None,
                   job: bytes | None, overdue: bool) -> None:
    # Requests left mid-way (decided, applying, failed) are queued again: the pipeline
    # resumes them from the recorded decision. Waiting ones are queued once their deadline
    # passed, so that their on_timeout outcome applies.
    if state == st.SKIPPED and rt.store.forget_skip(request_id):
        # Skipped when Tyk did not know it (or it was not pending): pending now, so
        # decided like any other.
        state = None
    if state in st.FINAL_STATES:
        result.decided += 1
    elif state == st.IN_REVIEW:
        result.in_review += 1
    elif state == st.WAITING and not overdue:
        result.waiting += 1
    elif not enqueue.ID_PATTERN.match(request_id):
        log.warning("pending key request with an unusable id %r left alone", request_id)
    elif job in _WILL_RUN:
        result.already_queued += 1
    elif enqueue.decision(rt.queue, request_id, "deadline" if overdue else "reconciler",
                          rt.settings.retry_delays, reclaim=True):
        result.queued.append(request_id)
        if overdue:
            result.overdue.append(request_id)
    else:
        result.already_queued += 1
