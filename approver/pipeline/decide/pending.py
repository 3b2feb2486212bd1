"""The request as its portal has it now: fetched, its facts gathered, checked still pending
(else recorded as skipped, or as done by Tyk)."""

from __future__ import annotations

import logging

from rq import get_current_job

from approver import state as st
from approver.pipeline import signals
from approver.pipeline.decide.apply import record_applied
from approver.pipeline.decide.in_tyk import decided_in_tyk
from approver.pipeline.decide.result import RESUMABLE, NotYetReadable
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import Applied, MalformedId
from approver.rules import FactContext

log = logging.getLogger(__name__)

# How long a request Tyk does not know is remembered as skipped (answers the hand-off page).
UNKNOWN_TTL = 3600


def gather(rt: Runtime, request) -> FactContext:
    """Everything the rules may ask about this request: from its portal, Redis and the signals."""
    source, _ = rt.source(request.ref)
    billing = rt.billing.get(request.developer_id) if request.developer_id else None
    context = source.gather(request, billing)
    signals.gather(rt, request.ref, request.developer_id, context)
    return context


def fetch(rt: Runtime, ref: str):
    """The request as its portal has it now, or None if it does not exist (yet).

    Raises MalformedId when no request can have this id.
    """
    source, native_id = rt.source(ref)
    return source.fetch(native_id, rt.store.hint(ref) if source.takes_hints else None)



def adopt(rt: Runtime, ref: str, state: dict | None) -> dict | None:
    """The state, with a review recorded before the inbox existed (as "applied") moved
    into the inbox; and a record that says it is carrying a decision out but holds none
    read as no record: a write that outlived the record it belonged to (a Redis failover
    can lose a record that was not replicated, and a later state write recreate a part
    of it). The request is then read from Tyk and decided afresh, never left to fail."""
    if state and state["state"] in RESUMABLE and state.get("outcome") not in ("approve", "deny"):
        log.warning("key request %s: its record says %s but holds no decision (a part of "
                    "a record a Redis failover lost): decided afresh", ref, state["state"])
        return None
    if state and state["state"] == st.APPLIED and state.get("outcome") == "review":
        rt.store.save_state(ref, state=st.IN_REVIEW)
        return {**state, "state": st.IN_REVIEW}
    return state



def still_pending(rt: Runtime, request_id: str, trigger: str, state: dict | None,
                  record: bool = True):
    """The request as Tyk has it now, or None (recorded as skipped) if it is not pending.

    A request never decided that Tyk does not know may not be readable yet (Tyk can
    announce a record before it can be read, docs/tyk-compatibility.md): while the job
    has retries left, that is an error to retry (NotYetReadable, after the queue's
    backoff); after them, or at once for an id no request can have, it is skipped with a
    state that expires, and nothing else is kept.
    """
    malformed = None
    try:
        request = fetch(rt, request_id)
    except MalformedId as exc:
        request, malformed = None, exc
    if request is None:
        why = "the key request no longer exists in Tyk"
    else:
        why = None if request.pending else "the key request is no longer pending in Tyk"
    if why is None:
        if state and state.get("not_found"):
            # Skipped while Tyk did not know it, pending now: the expiring skip goes, so
            # that what is recorded next is kept.
            rt.store.forget_skip(request_id)
        return request
    if request is None and record and (state is None or state.get("state") == st.ERROR):
        # Never decided (at most an earlier try failed), and unknown to Tyk.
        job = get_current_job()
        if malformed is None and job is not None and job.retries_left:
            raise NotYetReadable(f"key request {request_id} is not readable in Tyk (yet); "
                                 f"{job.retries_left} more tries")
        rt.store.skip_unknown(request_id, why, UNKNOWN_TTL)
        log.info("key request %s skipped: %s", request_id, malformed or why)
        return None
    if state and state["state"] in RESUMABLE:
        if _decided_otherwise(request, state):
            # Not ours: a person decided the other way in Tyk before this decision reached
            # it. Recorded as Tyk shows it (with the keys of an approval), for good: the
            # request leaves the unfinished ones and is not resumed again.
            log.warning("key request %s: decided the other way in Tyk before this %s was "
                        "applied", request_id, state.get("outcome"))
            decided_in_tyk(rt, request_id, request, state, trigger)
            return None
        # A crash (or a lost answer) after Tyk applied our decision, before we recorded
        # it: done, with the keys the developer gained since the decision was recorded.
        source, _ = rt.source(request_id)
        done = (source.approved_elsewhere(request, tuple(state.get("held_before") or ()))
                if state.get("outcome") == "approve" else Applied(already_processed=True))
        record_applied(rt, request_id, state, done, trigger, source.name)
    elif record:
        rt.store.save_state(request_id, state=st.SKIPPED, reason=why, updated_at=st.now_iso())
        rt.store.log("skipped", request_id, reason=why, trigger=trigger)
        log.info("key request %s skipped: %s", request_id, why)
    if state and state.get("state") == st.WAITING:
        rt.store.unpark(request_id, state.get("developer_id"))
    return None


def _decided_otherwise(request, state: dict) -> bool:
    """Whether Tyk shows the opposite of the recorded outcome (approved, or gone/rejected)."""
    approved = request is not None and request.approved
    return approved != (state.get("outcome") == "approve")
