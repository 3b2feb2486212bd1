"""A request decided in Tyk itself, by a person: recorded as Tyk shows it."""

from __future__ import annotations

import logging
import uuid

from approver import state as st
from approver.pipeline.decide.apply import apply_decision, record_decision
from approver.pipeline.decide.followup import follow_up
from approver.pipeline.decide.result import IN_TYK, Result
from approver.pipeline.runtime import Runtime

log = logging.getLogger(__name__)


def decided_in_tyk(rt: Runtime, ref: str, request, state: dict, trigger: str) -> Result:
    """Record what a person did in Tyk itself to a request left for review (or waiting),
    or to one whose recorded decision Tyk had not carried out yet (it is superseded).

    Approved: its keys are those the developer holds now for the request's policies and
    did not hold when the request was left for a person (or, if there is none yet, the
    one generated later), so billing revocation covers them and never an older key.
    Deleted (classic) or rejected (new portal): recorded as denied there.
    """
    if state["state"] == st.WAITING:
        rt.store.unpark(ref, state.get("developer_id"))
    carried = dict(decided_by=IN_TYK, **review(state), **about(state))
    if state["state"] not in st.INBOX_STATES and state.get("decision_id"):
        carried["superseded"] = state["decision_id"]  # our decision Tyk did not carry out
    held_before = tuple(state.get("held_before") or ())
    if request is not None and request.approved:
        record = record_decision(rt, request, trigger, outcome="approve", rule=IN_TYK,
                                 reason="approved in Tyk by a person", revision="",
                                 held_before=list(held_before), **carried)
        return apply_decision(rt, request, record, trigger, recorded=True,
                              held_before=held_before)
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
                          "decided", record,
                          also=lambda pipe: rt.store.queue_followup(pipe, ref))
    log.info("key request %s was %s", ref, reason)
    follow_up(rt, ref, {**record, "state": st.APPLIED})
    return Result(ref, st.APPLIED, "deny", IN_TYK, reason)


ABOUT = ("developer_email", "developer_name", "developer_company", "developer_fields",
         "developer_keys", "policy_names", "api_names", "request_fields")


def about(state: dict) -> dict:
    """What a new decision record carries over from the request's earlier one."""
    return {k: state[k] for k in ABOUT if state.get(k)}


def review(state: dict) -> dict:
    """The rule that left the request to a person and why, kept beside who decided it."""
    return {"review_rule": state.get("rule") or "", "review_reason": state.get("reason") or ""}
