"""The pipeline a job runs: fetch, gather facts, evaluate, record, apply."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from approver import store as st
from approver.errors import ApproverError
from approver.rules import FactContext, Facts, evaluate
from approver.runtime import Runtime
from approver.tyk import KeyRequest, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What one run of the pipeline did to one key request."""

    request_id: str
    state: str
    outcome: str | None = None
    rule: str | None = None
    reason: str | None = None

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
            # Tyk stores requests for policies that do not exist (CONTRACT §3.1): the
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
        try:
            request = rt.dashboard.get_key_request(request_id)
        except NotFound:
            return _skip(rt, request_id, trigger, "the key request no longer exists in Tyk")
        if state and state["state"] in (st.APPLYING, st.DECIDED, st.FAILED):
            # Resume the recorded decision: re-deciding could contradict what was logged.
            return _apply(rt, request, state, trigger)
        if request.approved:
            return _skip(rt, request_id, trigger, "the key request was already approved in Tyk")
        return _decide_and_apply(rt, request, trigger)


def _skip(rt: Runtime, request_id: str, trigger: str, why: str) -> Result:
    rt.store.save_state(request_id, state=st.SKIPPED, reason=why, updated_at=st.now_iso())
    rt.store.log("skipped", request_id, reason=why, trigger=trigger)
    log.info("key request %s skipped: %s", request_id, why)
    return Result(request_id, st.SKIPPED, reason=why)


def _decide_and_apply(rt: Runtime, request: KeyRequest, trigger: str) -> Result:
    ruleset = rt.rules.current()
    facts = Facts(gather(rt, request))
    decision = evaluate(ruleset, facts)
    decision_id = uuid.uuid4().hex
    record = {
        "decision_id": decision_id,
        "outcome": decision.outcome,
        "rule": decision.rule_id or "",
        "reason": decision.reason,
        "revision": decision.revision,
        "trigger": trigger,
        "developer_id": request.developer_id,
        "policies": list(request.policies),
        "decided_at": st.now_iso(),
        "mode": rt.settings.mode,
    }
    needs_call = decision.outcome in ("approve", "deny") and not rt.settings.shadow
    state = st.APPLYING if needs_call else (st.SHADOWED if rt.settings.shadow else st.APPLIED)
    rt.store.save_state(
        request.id, state=state, trace=decision.trace, facts=decision.facts,
        wait=decision.wait.__dict__ if decision.wait else None, **record,
    )
    rt.store.log("decided", request.id, trace=decision.trace, facts=decision.facts, **record)
    log.info(
        "key request %s decided %s by %s: %s", request.id, decision.outcome,
        decision.rule_id or "default", decision.reason,
    )
    if not needs_call:
        return Result(request.id, state, decision.outcome, decision.rule_id, decision.reason)
    return _apply(rt, request, {**record, "state": state}, trigger)


def _apply(rt: Runtime, request: KeyRequest, record: dict, trigger: str) -> Result:
    """Carry a recorded approve or deny out in Tyk; an answer of 'already done' is done."""
    outcome = record["outcome"]
    rt.store.save_state(request.id, state=st.APPLYING, updated_at=st.now_iso())
    fields = {}
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
                  record.get("reason"))


def _describe(exc: Exception) -> str:
    # Our error classes build their messages without secrets; anything else is named only.
    return str(exc) if isinstance(exc, ApproverError) else type(exc).__name__
