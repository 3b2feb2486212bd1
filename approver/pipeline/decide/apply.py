"""A decision recorded before anything is applied (the outbox), then carried out in Tyk
exactly once."""

from __future__ import annotations

import logging
import uuid

from approver import logs
from approver import state as st
from approver.pipeline import metrics, notify, signals
from approver.pipeline.decide.result import ReplicaBehind, Result, describe, permanent
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import PENDING_KEY

log = logging.getLogger(__name__)


def record_decision(rt: Runtime, request, trigger: str, *, outcome: str, rule: str,
                    reason: str, revision: str, wait: dict | None = None, **extra) -> dict:
    """Write the decision to the request's state and the log before anything is applied."""
    needs_call = outcome in ("approve", "deny") and not rt.settings.shadow
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
        "portal": rt.source(request.ref)[0].name,
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

    # The state, the counters, the wait and the log entry: one MULTI/EXEC round trip.
    rt.store.save_and_log(request.ref, fields, "decided",
                          {k: v for k, v in record.items() if k != "state"}, also=counters)
    logs.bind(decision_id=record["decision_id"])
    log.info("key request %s decided %s by %s: %s", request.ref, outcome, rule or "default",
             reason)
    # Announces review and wait now; approve/deny are announced by apply once carried out.
    notify.tell(rt, record, request.ref)
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
    remember = None
    try:
        if outcome == "approve":
            done = (source.approve(request) if held_before is None
                    else source.approved_elsewhere(request, held_before))
            about = dict(request_id=ref, policies=list(request.policies),
                         decision_id=record.get("decision_id"), portal=source.name)

            # A key that does not exist yet (secure key approval) is remembered as
            # pending, to be told apart from older ones when it appears.
            keys = list(done.key_ids) or ([PENDING_KEY + ref] if done.key_pending else [])

            def remember(pipe) -> None:
                rt.store.remember_keys(request.developer_id, keys, pipe=pipe,
                                       held_before=list(done.held_before), **about)
        else:
            done = source.deny(request, record.get("reason") or "")
    except Exception as exc:
        rt.store.save_and_log(
            ref, {"state": st.FAILED, "error": describe(exc), "updated_at": st.now_iso(),
                  "error_permanent": permanent(exc)},
            "apply_failed", {"outcome": outcome, "error": describe(exc), "trigger": trigger})
        raise
    fields = {"already_processed": done.already_processed}
    if outcome == "approve":
        fields["key_ids"] = list(done.key_ids)
        if done.key_pending:
            fields["key_pending"] = True
    # The key ids approved, the state and the log entry: one MULTI/EXEC round trip.
    rt.store.save_and_log(
        ref, {"state": st.APPLIED, "applied_at": st.now_iso(), **fields}, "applied",
        {"outcome": outcome, "decision_id": record.get("decision_id"), "trigger": trigger,
         **fields}, also=remember)
    log.info("key request %s: %s applied in Tyk", ref, outcome)
    notify.tell(rt, {**record, **fields, "state": st.APPLIED}, ref)
    return Result(ref, st.APPLIED, outcome, record.get("rule") or None, record.get("reason"),
                  applied_now=True)
