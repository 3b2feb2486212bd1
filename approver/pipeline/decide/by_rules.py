"""A request decided by the rules: read it, gather its facts, evaluate, record, apply;
resumed from the record after a crash, decided again when its wait's fact changed."""

from __future__ import annotations

import logging
import time

from approver import logs
from approver import state as st
from approver.pipeline import review, validators
from approver.pipeline.decide import pending
from approver.pipeline.decide.apply import apply_decision, apply_recorded, record_decision
from approver.pipeline.decide.in_tyk import decided_in_tyk
from approver.pipeline.decide.pending import adopt, fetch, still_pending
from approver.pipeline.decide.result import (
    RESUMABLE,
    NotYetReadable,
    Result,
    describe,
    permanent,
)
from approver.pipeline.runtime import Runtime
from approver.pipeline.steps import approval_fields
from approver.rules import Facts, developer_message, evaluate

log = logging.getLogger(__name__)


def run(rt: Runtime, ref: str, trigger: str) -> Result:
    """Decide and apply one key request, exactly once; safe to call any number of times.

    A wait is decided again if its developer's billing changed meanwhile: whoever stored
    that change may have found the request locked by this run and left it to us. Checked
    once the lock is released, so a change stored after the check finds the lock free.
    """
    with logs.bound(key_request_id=ref, decision_id=None):
        for _ in range(_RECHECKS):
            result = _run_locked(rt, ref, trigger)
            if result.state != st.WAITING or not stale_wait(rt, ref):
                return result
            trigger = "billing"
        log.warning("key request %s: billing kept changing while it was decided; the next "
                    "billing event decides it again", ref)
        return result


_RECHECKS = 10


def stale_wait(rt: Runtime, ref: str) -> bool:
    """Whether the request waits on a billing state older than its developer's current one."""
    state = rt.store.state(ref) or {}
    if state.get("state") != st.WAITING or not state.get("developer_id"):
        return False
    current = (rt.billing.get(state["developer_id"]) or {}).get("updated_ts")
    seen = state.get("billing_ts")
    return current != (float(seen) if seen else None)


def _run_locked(rt: Runtime, ref: str, trigger: str) -> Result:
    with rt.store.lock_and_state(ref) as state:
        state = adopt(rt, ref, state)
        if state and state["state"] in st.FINAL_STATES:
            return Result(ref, state["state"], state.get("outcome"), state.get("rule"))
        if state and state["state"] in st.INBOX_STATES:
            return _recheck(rt, ref, trigger, state)
        try:
            request = still_pending(rt, ref, trigger, state)
        except NotYetReadable:
            raise  # nothing is kept for an id Tyk does not know (yet)
        except Exception as exc:
            _undecided(rt, ref, trigger, state, exc)
            raise
        if request is None:
            return Result(ref, st.SKIPPED)
        if state and state["state"] in RESUMABLE:
            # Resume the recorded decision: re-deciding could contradict what was logged.
            return apply_decision(rt, request, state, trigger)
        return _decide_and_apply(rt, request, trigger, state)



def _recheck(rt: Runtime, ref: str, trigger: str, state: dict) -> Result:
    """A request in the inbox: recorded as decided in Tyk if it left Tyk's pending list,
    else left for its person (review) or decided again (a wait: its fact may have come)."""
    request = fetch(rt, ref)
    if request is None or not request.pending:
        return decided_in_tyk(rt, ref, request, state, trigger)
    if state["state"] == st.WAITING:
        return _decide_and_apply(rt, request, trigger, state)
    return Result(ref, st.IN_REVIEW, "review", state.get("rule"), state.get("reason"))



def _undecided(rt: Runtime, ref: str, trigger: str, state: dict | None,
               exc: Exception) -> None:
    """Record why the pipeline stopped before deciding: in the request's state, and in the
    log when no retry can help (the job then fails at once: `decisions list --failed`)."""
    error, final = describe(exc), permanent(exc)
    fields = {"error": error, "error_permanent": final, "updated_at": st.now_iso()}
    if not state or state.get("state") == st.ERROR:
        fields["state"] = st.ERROR  # else the recorded decision or wait stays as it is
    if final:
        rt.store.save_and_log(ref, fields, "failed", {"error": error, "trigger": trigger})
        log.warning("key request %s cannot be decided: %s", ref, error)
    else:
        rt.store.save_state(ref, **fields)


def _decide_and_apply(rt: Runtime, request, trigger: str,
                      previous: dict | None) -> Result:
    try:
        context = pending.gather(rt, request)
        decision = evaluate(rt.rules.current(), Facts(context))
        # What the developer holds now (read with the facts), to tell which keys an
        # approval produces: ours, even if its answer is lost, or one made in Tyk
        # meanwhile (decided_in_tyk), or one a person made before our deny reached Tyk.
        held = rt.source(request.ref)[0].held(request)
    except Exception as exc:
        _undecided(rt, request.ref, trigger, previous, exc)
        raise
    outcome, rule, reason = decision.outcome, decision.rule_id, decision.reason
    message = decision.message
    wait = None
    if outcome == "wait":
        deadline = float((previous or {}).get("deadline") or 0) or (
            time.time() + decision.wait.timeout_seconds)
        if time.time() >= deadline:
            # The wait is over: its on_timeout outcome decides now.
            outcome = decision.wait.on_timeout
            reason = f"{reason} (waited past the deadline: {outcome})"
            message = ""  # the rule's message spoke of the wait
        else:
            wait = {**decision.wait.to_dict(), "deadline": deadline}
    record = record_decision(
        rt, request, trigger, outcome=outcome, rule=rule or "", reason=reason,
        revision=decision.revision, trace=decision.trace, facts=decision.facts, wait=wait,
        notes=dict(decision.notes), message=developer_message(outcome, message),
        waited_since=(previous or {}).get("waited_since") or (st.now_iso() if wait else ""),
        # The billing state this was decided on (see stale_wait).
        billing_ts=(context.billing or {}).get("updated_ts") if wait else "",
        held_before=list(held),
        before=previous or {},  # read under the lock held since
        grant=decision.grant.to_dict() if decision.grant and outcome == "approve" else None,
        # The steps people must take before an approval, and by when (review only).
        **approval_fields(decision if outcome == "review" else None),
        **review.describe(context),
    )
    if previous and previous.get("state") == st.WAITING and not wait:
        rt.store.unpark(request.ref, request.developer_id)
    result = apply_recorded(rt, request, record, trigger)
    if record.get("approvals"):  # a first step that is a validator's: ask it now
        validators.ask_if_due(rt, request.ref)
    return result
