"""Decisions no rule made: a person's on a request in the review inbox, one made in Tyk
itself, a billing system's."""

from __future__ import annotations

import logging

from approver import logs
from approver import state as st
from approver.errors import ApproverError
from approver.pipeline.decide.apply import apply_decision, apply_recorded, record_decision
from approver.pipeline.decide.in_tyk import about, decided_in_tyk, review
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
        state = adopt(rt, ref, state) or {}
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
                                 message=developer_message(outcome), **about(state))
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
                and state.get("rule") == BY_PERSON
                and state["state"] in (*RESUMABLE, st.APPLIED)):
            # This very decision was recorded by an earlier try: carry it on (or it is done).
            if state["state"] == st.APPLIED:
                return Result(ref, st.APPLIED, state.get("outcome"), BY_PERSON, reason)
            request = still_pending(rt, ref, via, state)
            if request is not None:
                return apply_decision(rt, request, state, via)
            return _told(rt, ref, state, outcome, reason, via, by, audit)
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
                                 **review(state), **about(state), **audit)
        return apply_recorded(rt, request, record, via)


def _told(rt: Runtime, ref: str, earlier: dict, outcome: str, reason: str, via: str,
          by: str, audit: dict) -> Result:
    """What an earlier try of this decision came to, once Tyk no longer lists the request
    as pending: applied only if the record says this very decision was."""
    now = rt.store.state(ref) or {}
    if now.get("state") == st.APPLIED and now.get("decision_id") == earlier.get("decision_id"):
        return Result(ref, st.APPLIED, now.get("outcome"), BY_PERSON, reason)
    why = (f"it was {past(now.get('outcome'))} in Tyk meanwhile"
           if now.get("rule") == IN_TYK else _not_in_inbox(now or None))
    return _refuse(rt, ref, outcome, reason, via, why, decided_by=by, **audit)


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
