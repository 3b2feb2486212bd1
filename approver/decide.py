"""The pipeline a job runs: fetch, gather facts, evaluate, record, apply."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from approver import logs, metrics
from approver import store as st
from approver.errors import ApproverError
from approver.rules import FactContext, Facts, evaluate
from approver.runtime import Runtime
from approver.tyk import KeyRequest, NotFound

log = logging.getLogger(__name__)

# States from which a recorded approve/deny is carried on rather than decided again.
_RESUMABLE = (st.APPLYING, st.DECIDED, st.FAILED)


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


def gather(rt: Runtime, request: KeyRequest) -> FactContext:
    """Everything the rules may ask about this request, read from the Dashboard and Redis."""
    developer = request.developer
    if developer is None and request.developer_id:
        developer = rt.dashboard.get_developer(request.developer_id)
    policies = {}
    for policy_id in request.policies:
        try:
            policies[policy_id] = rt.dashboard.get_policy(policy_id).raw
        except NotFound:
            # Tyk stores requests for policies that do not exist (Tyk CONTRACT §3.1): the
            # policy facts are then unknown, which fails safe to review.
            log.warning("key request %s names unknown policy %s", request.id, policy_id)
    billing = rt.store.billing(request.developer_id) if request.developer_id else None
    return FactContext(
        request=request.raw,
        developer=developer.raw if developer else None,
        policies=policies,
        catalogue=None,
        billing=billing,
    )


def run(rt: Runtime, request_id: str, trigger: str) -> Result:
    """Decide and apply one key request, exactly once; safe to call any number of times."""
    with rt.store.lock(request_id):
        state = rt.store.state(request_id)
        if state and state["state"] in st.FINAL_STATES:
            return Result(request_id, state["state"], state.get("outcome"), state.get("rule"))
        request = _pending(rt, request_id, trigger, state)
        if request is None:
            return Result(request_id, st.SKIPPED)
        if state and state["state"] in _RESUMABLE:
            # Resume the recorded decision: re-deciding could contradict what was logged.
            return _apply(rt, request, state, trigger)
        return _decide_and_apply(rt, request, trigger, state)


def decide_explicitly(rt: Runtime, request_id: str, outcome: str, reason: str,
                      source: str) -> Result:
    """Apply a decision made elsewhere (a billing system), if the request is still pending."""
    with rt.store.lock(request_id):
        state = rt.store.state(request_id) or {}
        if state.get("state") in _RESUMABLE:
            return _apply(rt, rt.dashboard.get_key_request(request_id), state, source)
        request = _pending(rt, request_id, source, state, record=False)
        if request is None:
            why = "the key request is no longer pending in Tyk"
            rt.store.log("refused", request_id, outcome=outcome, reason=reason,
                         trigger=source, why=why)
            log.info("explicit %s of key request %s refused: %s", outcome, request_id, why)
            return Result(request_id, "refused", outcome, reason=why)
        record = _record(rt, request, source, outcome=outcome, rule=f"explicit:{source}",
                         reason=reason, revision="", decided_by=source)
        return _apply(rt, request, record, source)


def _pending(rt: Runtime, request_id: str, trigger: str, state: dict | None,
             record: bool = True) -> KeyRequest | None:
    """The request as Tyk has it now, or None (recorded as skipped) if it is not pending."""
    try:
        request = rt.dashboard.get_key_request(request_id)
    except NotFound:
        request, why = None, "the key request no longer exists in Tyk"
    else:
        why = "the key request was already approved in Tyk" if request.approved else None
    if why is None:
        return request
    if state and state["state"] in _RESUMABLE:
        # A crash after Tyk applied our decision but before we recorded it: done.
        rt.store.save_state(request_id, state=st.APPLIED, applied_at=st.now_iso(),
                            already_processed=True)
        rt.store.log("applied", request_id, outcome=state.get("outcome"), trigger=trigger,
                     already_processed=True, decision_id=state.get("decision_id"))
    elif record:
        rt.store.save_state(request_id, state=st.SKIPPED, reason=why, updated_at=st.now_iso())
        rt.store.log("skipped", request_id, reason=why, trigger=trigger)
        log.info("key request %s skipped: %s", request_id, why)
    if state and state.get("state") == st.WAITING:
        rt.store.unpark(request_id, state.get("developer_id"))
    return None


def _decide_and_apply(rt: Runtime, request: KeyRequest, trigger: str,
                      previous: dict | None) -> Result:
    decision = evaluate(rt.rules.current(), Facts(gather(rt, request)))
    outcome, rule, reason = decision.outcome, decision.rule_id, decision.reason
    wait = None
    if outcome == "wait":
        deadline = float((previous or {}).get("deadline") or 0) or (
            time.time() + decision.wait.timeout_seconds)
        if time.time() >= deadline:
            # The wait is over: its on_timeout outcome decides now.
            outcome = decision.wait.on_timeout
            reason = f"{reason} (waited past the deadline: {outcome})"
        else:
            wait = {**decision.wait.to_dict(), "deadline": deadline}
    record = _record(
        rt, request, trigger, outcome=outcome, rule=rule or "", reason=reason,
        revision=decision.revision, trace=decision.trace, facts=decision.facts, wait=wait,
        waited_since=(previous or {}).get("waited_since") or (st.now_iso() if wait else ""),
    )
    if previous and previous.get("state") == st.WAITING and not wait:
        rt.store.unpark(request.id, request.developer_id)
    if record["state"] != st.APPLYING:
        return Result(request.id, record["state"], outcome, rule, reason)
    return _apply(rt, request, record, trigger)


def _record(rt: Runtime, request: KeyRequest, trigger: str, *, outcome: str, rule: str,
            reason: str, revision: str, wait: dict | None = None, **extra) -> dict:
    """Write the decision to the request's state and the log before anything is applied."""
    needs_call = outcome in ("approve", "deny") and not rt.settings.shadow
    if rt.settings.shadow:
        state = st.SHADOWED
    elif wait:
        state = st.WAITING
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
        "developer_id": request.developer_id,
        "policies": list(request.policies),
        "decided_at": st.now_iso(),
        "mode": rt.settings.mode,
        "wait": wait,
        "deadline": wait["deadline"] if wait else "",
        **extra,
    }
    rt.store.save_state(request.id, **record)
    logs.bind(decision_id=record["decision_id"])
    metrics.count_decision(rt.redis, outcome, rule)
    if wait:
        rt.store.park(request.id, request.developer_id, wait["deadline"])
    rt.store.log("decided", request.id, **{k: v for k, v in record.items() if k != "state"})
    log.info("key request %s decided %s by %s: %s", request.id, outcome, rule or "default",
             reason)
    return record


def _apply(rt: Runtime, request: KeyRequest, record: dict, trigger: str) -> Result:
    """Carry a recorded approve or deny out in Tyk; an answer of 'already done' is done."""
    outcome = record["outcome"]
    rt.store.save_state(request.id, state=st.APPLYING, updated_at=st.now_iso())
    try:
        if outcome == "approve":
            approval = rt.dashboard.approve_key_request(request)
            key_ids = list(approval.key_ids)
            rt.store.remember_keys(
                request.developer_id, key_ids, request_id=request.id,
                policies=list(request.policies), decision_id=record.get("decision_id"),
            )
            fields = {"key_ids": key_ids, "already_processed": approval.already_processed}
        else:
            deleted = rt.dashboard.delete_key_request(request.id)
            fields = {"already_processed": not deleted}
    except Exception as exc:
        rt.store.save_state(request.id, state=st.FAILED, error=_describe(exc),
                            updated_at=st.now_iso())
        rt.store.log("apply_failed", request.id, outcome=outcome, error=_describe(exc),
                     trigger=trigger)
        raise
    rt.store.save_state(request.id, state=st.APPLIED, applied_at=st.now_iso(), **fields)
    rt.store.log("applied", request.id, outcome=outcome, decision_id=record.get("decision_id"),
                 trigger=trigger, **fields)
    log.info("key request %s: %s applied in Tyk", request.id, outcome)
    return Result(request.id, st.APPLIED, outcome, record.get("rule") or None,
                  record.get("reason"), applied_now=True)


def _describe(exc: Exception) -> str:
    # Our error classes build their messages without secrets; anything else is named only.
    return str(exc) if isinstance(exc, ApproverError) else type(exc).__name__
