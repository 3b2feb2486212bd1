"""Decisions no rule made: a person's on a request in the review inbox, one made in Tyk
itself, a billing system's."""

from __future__ import annotations

import logging
import uuid

from approver import logs
from approver import state as st
from approver.errors import ApproverError
from approver.pipeline import notify
from approver.pipeline.decide.apply import apply_decision, apply_recorded, record_decision
from approver.pipeline.decide.pending import adopt, fetch, still_pending
from approver.pipeline.decide.result import BY_PERSON, IN_TYK, RESUMABLE, Result
from approver.pipeline.runtime import Runtime
from approver.rules import developer_message

log = logging.getLogger(__name__)


def decide_explicitly(rt: Runtime, ref: str, outcome: str, reason: str,
                      source: str) -> Result:
    """Apply a decision made elsewhere (a billing system), if the request is still pending."""
    with logs.bound(key_request_id=ref, decision_id=None), \
            rt.store.lock_and_state(ref) as state:
        state = state or {}
        request = still_pending(rt, ref, source, state, record=False)
        if request is not None and state.get("state") in RESUMABLE:
            return apply_decision(rt, request, state, source)
        if request is None:
            return _refuse(rt, ref, outcome, reason, source,
                           "the key request is no longer pending in Tyk")
        if state.get("state") == st.WAITING:
            rt.store.unpark(ref, state.get("developer_id"))
        # A system's reason is kept for admins; the developer is told the plain default.
        record = record_decision(rt, request, source, outcome=outcome, rule=f"explicit:{source}",
                                 reason=reason, revision="", decided_by=source,
                                 message=developer_message(outcome), **_about(state))
        return apply_recorded(rt, request, record, source)


def decide_by_person(rt: Runtime, ref: str, outcome: str, reason: str, by: str,
                     via: str, **audit) -> Result:
    """Apply a person's decision on a request in the review inbox, exactly once.

    Refused (and logged) unless the request still waits for a person: one another admin,
    Tyk itself or a rule decided meanwhile is not decided again. `audit` (where from,
    when claimed) goes into the decision record with `decided_by` and `via`.
    """
    with logs.bound(key_request_id=ref, decision_id=None), \
            rt.store.lock_and_state(ref) as state:
        state = adopt(rt, ref, state)
        if (state and audit.get("claim_id") and state.get("claim_id") == audit["claim_id"]
                and state["state"] in (*RESUMABLE, st.APPLIED)):
            # This very decision was recorded by an earlier try: carry it on (or it is done).
            request = None if state["state"] == st.APPLIED else still_pending(rt, ref, via, state)
            if request is None:
                return Result(ref, st.APPLIED, state.get("outcome"), BY_PERSON, reason)
            return apply_decision(rt, request, state, via)
        if not state or state["state"] not in st.INBOX_STATES:
            return _refuse(rt, ref, outcome, reason, via, _not_in_inbox(state),
                           decided_by=by, **audit)
        request = fetch(rt, ref)
        if request is None or not request.pending:
            done = decided_in_tyk(rt, ref, request, state, via)
            return _refuse(rt, ref, outcome, reason, via,
                           f"it was {past(done.outcome)} in Tyk meanwhile",
                           decided_by=by, **audit)
        if state["state"] == st.WAITING:
            rt.store.unpark(ref, state.get("developer_id"))
        record = record_decision(rt, request, via, outcome=outcome, rule=BY_PERSON, reason=reason,
                                 revision=_revision(rt), decided_by=by, via=via,
                                 message=developer_message(outcome, reason),
                                 **_review(state), **_about(state), **audit)
        return apply_recorded(rt, request, record, via)


def _refuse(rt: Runtime, ref: str, outcome: str, reason: str, trigger: str, why: str,
            **audit) -> Result:
    rt.store.log("refused", ref, outcome=outcome, reason=reason, trigger=trigger, why=why,
                 **audit)
    log.info("%s of key request %s refused: %s", outcome, ref, why)
    return Result(ref, "refused", outcome, reason=why)


def _not_in_inbox(state: dict | None) -> str:
    """Why a request is not (or no longer) for a person to decide."""
    if not state:
        return "the service has no record of this key request"
    name, by = state["state"], state.get("decided_by") or state.get("rule") or "default"
    if name == st.APPLIED:
        return f"it was already {past(state.get('outcome'))} (by {by})"
    if name in RESUMABLE:
        return f"it is being {past(state.get('outcome'))} (by {by})"
    if name == st.SKIPPED:
        return state.get("reason") or "it is no longer pending in Tyk"
    return f"it is not awaiting review (state {name})"


def past(outcome: str | None) -> str:
    """`approved`, `denied`: what a decision did, for a sentence."""
    return {"approve": "approved", "deny": "denied"}.get(outcome or "", outcome or "decided")



def _revision(rt: Runtime) -> str:
    """The revision of the rules in force, or "" if none load (a person needs none)."""
    try:
        return rt.rules.current().revision
    except ApproverError:
        return ""


ABOUT = ("developer_email", "developer_name", "developer_company", "developer_fields",
         "developer_keys", "policy_names", "api_names", "request_fields")


def _about(state: dict) -> dict:
    """What a new decision record carries over from the request's earlier one."""
    return {k: state[k] for k in ABOUT if state.get(k)}


def _review(state: dict) -> dict:
    """The rule that left the request to a person and why, kept beside who decided it."""
    return {"review_rule": state.get("rule") or "", "review_reason": state.get("reason") or ""}



def decided_in_tyk(rt: Runtime, ref: str, request, state: dict, trigger: str) -> Result:
    """Record what a person did in Tyk itself to a request left for review (or waiting).

    Approved: its keys are those the developer holds now for the request's policies and
    did not hold when the request was left for a person (or, if there is none yet, the
    one generated later), so billing revocation covers them and never an older key.
    Deleted (classic) or rejected (new portal): recorded as denied there.
    """
    if state["state"] == st.WAITING:
        rt.store.unpark(ref, state.get("developer_id"))
    carried = dict(decided_by=IN_TYK, **_review(state), **_about(state))
    if request is not None and request.approved:
        record = record_decision(rt, request, trigger, outcome="approve", rule=IN_TYK,
                                 reason="approved in Tyk by a person", revision="", **carried)
        return apply_decision(rt, request, record, trigger, recorded=True,
                              held_before=tuple(state.get("held_before") or ()))
    reason = "rejected in Tyk by a person" if request else "deleted in Tyk by a person"
    record = {
        "decision_id": uuid.uuid4().hex, "outcome": "deny", "rule": IN_TYK, "reason": reason,
        "revision": "", "trigger": trigger, "portal": state.get("portal") or "",
        "developer_id": state.get("developer_id") or "",
        "policies": state.get("policies") or [], "decided_at": st.now_iso(),
        "mode": rt.settings.mode, "wait": None, "deadline": "", "already_processed": True,
        **carried,
    }
    rt.store.save_and_log(ref, {**record, "state": st.APPLIED, "applied_at": st.now_iso()},
                          "decided", record)
    log.info("key request %s was %s", ref, reason)
    notify.tell(rt, {**record, "state": st.APPLIED}, ref)
    return Result(ref, st.APPLIED, "deny", IN_TYK, reason)
