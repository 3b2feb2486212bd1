"""A decision recorded before anything is applied (the outbox), then carried out in Tyk
exactly once."""

from __future__ import annotations

import logging
import time
import uuid

from approver import logs
from approver import state as st
from approver.pipeline import metrics, signals
from approver.pipeline.decide.followup import follow_up
from approver.pipeline.decide.result import IN_TYK, ReplicaBehind, Result, describe, permanent
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import PENDING_KEY, Applied
from approver.state import grants

log = logging.getLogger(__name__)


def record_decision(rt: Runtime, request, trigger: str, *, outcome: str, rule: str,
                    reason: str, revision: str, wait: dict | None = None,
                    before: dict | None = None, **extra) -> dict:
    """Write the decision to the request's state and the log before anything is applied.

    `before`: the record as stored now ({} for none), read under the request's lock in
    this run, if the caller has it (Records._queue_state sends fewer commands)."""
    needs_call = outcome in ("approve", "deny") and not rt.settings.shadow
    source = rt.source(request.ref)[0]
    if needs_call and "held_before" not in extra:
        # What the developer holds before Tyk is called (the outbox keeps it): the keys an
        # approval adds are told apart by it, even when the answer to the call is lost.
        extra["held_before"] = list(source.held(request))
    if rt.settings.shadow:
        state = st.SHADOWED
    elif wait:
        state = st.WAITING
    elif outcome == "review":
        state = st.IN_REVIEW
    else:
        state = st.APPLYING if needs_call else st.APPLIED
    record = {
        "state": state,
        "decision_id": uuid.uuid4().hex,
        "outcome": outcome,
        "rule": rule,
        "reason": reason,
        "revision": revision,
        "trigger": trigger,
        "portal": source.name,
        "developer_id": request.developer_id,
        "policies": list(request.policies),
        "decided_at": st.now_iso(),
        "mode": rt.settings.mode,
        "wait": wait,
        "deadline": wait["deadline"] if wait else "",
        **extra,
    }
    fields = record
    if state == st.APPLYING:
        # What apply writes before its Dashboard call, written here already (the outbox).
        fields = {**record, "updated_at": st.now_iso()}

    def counters(pipe) -> None:
        metrics.count_decision(pipe, outcome, rule)
        signals.record(rt, pipe, request, outcome, record.get("developer_email"))
        if wait:
            rt.store.queue_park(pipe, request.ref, request.developer_id, wait["deadline"])
        if state != st.APPLYING:
            rt.store.queue_followup(pipe, request.ref)

    # The state, the counters, the wait and the log entry: one MULTI/EXEC round trip.
    rt.store.save_and_log(request.ref, fields, "decided",
                          {k: v for k, v in record.items() if k != "state"}, also=counters,
                          before=before)
    logs.bind(decision_id=record["decision_id"])
    log.info("key request %s decided %s by %s: %s", request.ref, outcome, rule or "default",
             reason)
    # Announces review and wait now; approve/deny are announced by apply once carried out.
    if state != st.APPLYING:
        follow_up(rt, request.ref, record)
    return record


def apply_recorded(rt: Runtime, request, record: dict, trigger: str) -> Result:
    """Carry out a decision record_decision just wrote, unless it was only recorded (a
    review or a wait, or shadow mode: nothing is applied)."""
    if record["state"] != st.APPLYING:
        return Result(request.ref, record["state"], record["outcome"],
                      record.get("rule") or None, record.get("reason"))
    return apply_decision(rt, request, record, trigger, recorded=True)


def apply_decision(rt: Runtime, request, record: dict, trigger: str,
                   recorded: bool = False, held_before: tuple[str, ...] | None = None) -> Result:
    """Carry a recorded approve or deny out in Tyk; an answer of 'already done' is done.

    `recorded`: the record was just written by record, as "applying" (with updated_at)
    if it said so, so that write is not repeated. `held_before`: the approval was made in
    Tyk itself, by a person; what the developer held before tells its keys apart.
    """
    outcome, ref = record["outcome"], request.ref
    source, _ = rt.source(ref)
    if not (recorded and record["state"] == st.APPLYING):
        rt.store.save_state(ref, state=st.APPLYING, updated_at=st.now_iso())
    if rt.settings.redis_sentinels and not rt.store.replicated():
        # Redis has replicas (Sentinel): the outbox record must be on one before Tyk is
        # called, or a failover to a replica that lacked it would forget a decision Tyk
        # then carries out (docs/operations.md, 6.4). Tried again later, resumed from it.
        raise ReplicaBehind(f"key request {ref}: the decision record reached no Redis "
                            "replica in time; Tyk is not called until one has it")
    try:
        if outcome == "deny":
            # Non-empty key ids: Tyk approved it before the deny reached it (a person).
            held = record.get("held_before")
            done = source.deny(request, record.get("reason") or "",
                               None if held is None else tuple(held))
        elif held_before is not None:
            done = source.approved_elsewhere(request, held_before)
        else:
            done = source.approve(request)
            if done.already_processed and not done.key_ids:
                # Approved already (an earlier try whose answer was lost, or a person):
                # its keys are those the developer gained since the decision was recorded.
                done = source.approved_elsewhere(request,
                                                 tuple(record.get("held_before") or ()))
    except Exception as exc:
        rt.store.save_and_log(
            ref, {"state": st.FAILED, "error": describe(exc), "updated_at": st.now_iso(),
                  "error_permanent": permanent(exc)},
            "apply_failed", {"outcome": outcome, "error": describe(exc), "trigger": trigger})
        raise
    # A record record_decision just wrote as "applying" is the record as stored.
    return record_applied(rt, ref, record, done, trigger, source.name,
                          before=record if recorded and record["state"] == st.APPLYING
                          else None)


def record_applied(rt: Runtime, ref: str, record: dict, done: Applied, trigger: str,
                   portal: str, before: dict | None = None) -> Result:
    """Record what carrying out `record` did in Tyk (`done`): applied, with the keys an
    approval produced kept for revocation, its log entry and its follow-up, in one
    MULTI/EXEC; then queue the follow-up (notifications, a billing check). `before`: the
    record as stored now, if known exactly (Records._queue_state)."""
    outcome = record["outcome"]
    fields: dict = {"already_processed": done.already_processed}
    if outcome == "deny" and done.key_ids:
        # Tyk approved the request before our deny reached it: what is true is recorded.
        outcome = "approve"
        fields.update(outcome=outcome, rule=IN_TYK, decided_by=IN_TYK,
                      reason="approved in Tyk by a person before this deny reached it",
                      denied_by=record.get("rule") or "")
        log.warning("key request %s was approved in Tyk before our deny reached it; "
                    "its keys are kept for revocation", ref)
    remember = None
    if outcome == "approve":
        fields["key_ids"] = list(done.key_ids)
        if done.key_pending:
            fields["key_pending"] = True
        # A key that does not exist yet (secure key approval) is remembered as
        # pending, to be told apart from older ones when it appears.
        keys = list(done.key_ids) or ([PENDING_KEY + ref] if done.key_pending else [])
        about = dict(request_id=ref, policies=list(record.get("policies") or []),
                     decision_id=record.get("decision_id"), portal=portal,
                     held_before=list(done.held_before or record.get("held_before") or []))

        if grant := grants.of(record):  # approved for a period: its end is scheduled
            fields |= grants.starts(grant, time.time())

        def remember(pipe) -> None:
            rt.store.remember_keys(record.get("developer_id") or "", keys, pipe=pipe,
                                   **about)
            if grant:
                grants.schedule(pipe, ref, fields)

    def also(pipe) -> None:
        if remember is not None:
            remember(pipe)
        rt.store.queue_followup(pipe, ref)

    # The key ids approved, the state, the log entry and the follow-up's mark: one
    # MULTI/EXEC round trip.
    rt.store.save_and_log(
        ref, {"state": st.APPLIED, "applied_at": st.now_iso(), **fields}, "applied",
        {"outcome": outcome, "decision_id": record.get("decision_id"), "trigger": trigger,
         **fields}, also=also, before=before)
    log.info("key request %s: %s applied in Tyk", ref, outcome)
    applied = {**record, **fields, "state": st.APPLIED}
    follow_up(rt, ref, applied)
    return Result(ref, st.APPLIED, outcome, applied.get("rule") or None,
                  applied.get("reason"), applied_now=True)
