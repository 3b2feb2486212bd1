"""The pipeline a job runs: fetch, gather facts, evaluate, record, apply."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from rq import get_current_job

from approver import logs
from approver import state as st
from approver.errors import ApproverError
from approver.pipeline import metrics, notify, review
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import PENDING_KEY, MalformedId, UnknownSource
from approver.rules import FactContext, Facts, evaluate
from approver.tyk.errors import DashboardError

log = logging.getLogger(__name__)

# States from which a recorded approve/deny is carried on rather than decided again.
_RESUMABLE = (st.APPLYING, st.DECIDED, st.FAILED)
# How long a request Tyk does not know is remembered as skipped (answers the hand-off page).
UNKNOWN_TTL = 3600


class ReplicaBehind(ApproverError):
    """A write the next step depends on has not reached a Redis replica (yet)."""


class NotYetReadable(ApproverError):
    """Tyk does not know the request yet; the job is tried again later."""

    retryable = True


# 4xx answers a later try may not get: 404 (the request is gone: _pending skips it), 408,
# 409 and 429 (busy or conflicting now), 401 and 403 (the service's own secret or
# permissions, which an operator fixes; every request then goes through again).
_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 409, 429})


def permanent(exc: BaseException) -> bool:
    """Whether trying again cannot help: Tyk refused this request as sent (a 4xx about it,
    e.g. 400 "Invalid policy ID."), answered in a shape we cannot read, or the request names
    a portal this service is not configured for."""
    if isinstance(exc, UnknownSource):
        return True
    if not isinstance(exc, DashboardError) or exc.retryable or exc.status is None:
        return False
    return 200 <= exc.status < 300 or (
        400 <= exc.status < 500 and exc.status not in _TRANSIENT_4XX)
# The `rule` of decisions no rule made: a person's (decided_by names them), Tyk's own.
BY_PERSON, IN_TYK = "person", "tyk"


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


def gather(rt: Runtime, request) -> FactContext:
    """Everything the rules may ask about this request, from its portal and Redis."""
    source, _ = rt.source(request.ref)
    billing = rt.billing.get(request.developer_id) if request.developer_id else None
    return source.gather(request, billing)


def fetch(rt: Runtime, ref: str):
    """The request as its portal has it now, or None if it does not exist (yet).

    Raises MalformedId when no request can have this id.
    """
    source, native_id = rt.source(ref)
    return source.fetch(native_id, rt.store.hint(ref) if source.takes_hints else None)


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
        state = _adopt(rt, ref, state)
        if state and state["state"] in st.FINAL_STATES:
            return Result(ref, state["state"], state.get("outcome"), state.get("rule"))
        if state and state["state"] in st.INBOX_STATES:
            return _recheck(rt, ref, trigger, state)
        try:
            request = _pending(rt, ref, trigger, state)
        except NotYetReadable:
            raise  # nothing is kept for an id Tyk does not know (yet)
        except Exception as exc:
            _undecided(rt, ref, trigger, state, exc)
            raise
        if request is None:
            return Result(ref, st.SKIPPED)
        if state and state["state"] in _RESUMABLE:
            # Resume the recorded decision: re-deciding could contradict what was logged.
            return _apply(rt, request, state, trigger)
        return _decide_and_apply(rt, request, trigger, state)


def decide_explicitly(rt: Runtime, ref: str, outcome: str, reason: str,
                      source: str) -> Result:
    """Apply a decision made elsewhere (a billing system), if the request is still pending."""
    with logs.bound(key_request_id=ref, decision_id=None), \
            rt.store.lock_and_state(ref) as state:
        state = state or {}
        request = _pending(rt, ref, source, state, record=False)
        if request is not None and state.get("state") in _RESUMABLE:
            return _apply(rt, request, state, source)
        if request is None:
            return _refuse(rt, ref, outcome, reason, source,
                           "the key request is no longer pending in Tyk")
        record = _record(rt, request, source, outcome=outcome, rule=f"explicit:{source}",
                         reason=reason, revision="", decided_by=source, **_about(state))
        return _apply(rt, request, record, source, recorded=True)


def decide_by_person(rt: Runtime, ref: str, outcome: str, reason: str, by: str,
                     via: str, **audit) -> Result:
    """Apply a person's decision on a request in the review inbox, exactly once.

    Refused (and logged) unless the request still waits for a person: one another admin,
    Tyk itself or a rule decided meanwhile is not decided again. `audit` (where from,
    when claimed) goes into the decision record with `decided_by` and `via`.
    """
    with logs.bound(key_request_id=ref, decision_id=None), \
            rt.store.lock_and_state(ref) as state:
        state = _adopt(rt, ref, state)
        if (state and audit.get("claim_id") and state.get("claim_id") == audit["claim_id"]
                and state["state"] in (*_RESUMABLE, st.APPLIED)):
            # This very decision was recorded by an earlier try: carry it on (or it is done).
            request = None if state["state"] == st.APPLIED else _pending(rt, ref, via, state)
            if request is None:
                return Result(ref, st.APPLIED, state.get("outcome"), BY_PERSON, reason)
            return _apply(rt, request, state, via)
        if not state or state["state"] not in st.INBOX_STATES:
            return _refuse(rt, ref, outcome, reason, via, _not_in_inbox(state),
                           decided_by=by, **audit)
        request = fetch(rt, ref)
        if request is None or not request.pending:
            done = _decided_in_tyk(rt, ref, request, state, via)
            return _refuse(rt, ref, outcome, reason, via,
                           f"it was {_past(done.outcome)} in Tyk meanwhile",
                           decided_by=by, **audit)
        if state["state"] == st.WAITING:
            rt.store.unpark(ref, state.get("developer_id"))
        record = _record(rt, request, via, outcome=outcome, rule=BY_PERSON, reason=reason,
                         revision=_revision(rt), decided_by=by, via=via,
                         review_rule=state.get("rule") or "", **_about(state), **audit)
        if record["state"] != st.APPLYING:  # shadow mode: recorded, nothing applied
            return Result(ref, record["state"], outcome, BY_PERSON, reason)
        return _apply(rt, request, record, via, recorded=True)


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
        return f"it was already {_past(state.get('outcome'))} (by {by})"
    if name in _RESUMABLE:
        return f"it is being {_past(state.get('outcome'))} (by {by})"
    if name == st.SKIPPED:
        return state.get("reason") or "it is no longer pending in Tyk"
    return f"it is not awaiting review (state {name})"


def _past(outcome: str | None) -> str:
    return {"approve": "approved", "deny": "denied"}.get(outcome or "", outcome or "decided")


def _adopt(rt: Runtime, ref: str, state: dict | None) -> dict | None:
    """The state, with a review recorded before the inbox existed (as "applied") moved
    into the inbox."""
    if state and state["state"] == st.APPLIED and state.get("outcome") == "review":
        rt.store.save_state(ref, state=st.IN_REVIEW)
        return {**state, "state": st.IN_REVIEW}
    return state


def _revision(rt: Runtime) -> str:
    """The revision of the rules in force, or "" if none load (a person needs none)."""
    try:
        return rt.rules.current().revision
    except ApproverError:
        return ""


def _about(state: dict) -> dict:
    """What a new decision record carries over from the request's earlier one."""
    return {k: state[k] for k in ("developer_email", "policy_names", "request_fields")
            if state.get(k)}


def _recheck(rt: Runtime, ref: str, trigger: str, state: dict) -> Result:
    """A request in the inbox: recorded as decided in Tyk if it left Tyk's pending list,
    else left for its person (review) or decided again (a wait: its fact may have come)."""
    request = fetch(rt, ref)
    if request is None or not request.pending:
        return _decided_in_tyk(rt, ref, request, state, trigger)
    if state["state"] == st.WAITING:
        return _decide_and_apply(rt, request, trigger, state)
    return Result(ref, st.IN_REVIEW, "review", state.get("rule"), state.get("reason"))


def _decided_in_tyk(rt: Runtime, ref: str, request, state: dict, trigger: str) -> Result:
    """Record what a person did in Tyk itself to a request left for review (or waiting).

    Approved: its keys are those the developer holds now for the request's policies and
    did not hold when the request was left for a person (or, if there is none yet, the
    one generated later), so billing revocation covers them and never an older key.
    Deleted (classic) or rejected (new portal): recorded as denied there.
    """
    if state["state"] == st.WAITING:
        rt.store.unpark(ref, state.get("developer_id"))
    carried = dict(review_rule=state.get("rule") or "", decided_by=IN_TYK, **_about(state))
    if request is not None and request.approved:
        record = _record(rt, request, trigger, outcome="approve", rule=IN_TYK,
                         reason="approved in Tyk by a person", revision="", **carried)
        return _apply(rt, request, record, trigger, recorded=True,
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
    notify.enqueue_notifications(rt.queue, rt.settings, {**record, "state": st.APPLIED}, ref)
    return Result(ref, st.APPLIED, "deny", IN_TYK, reason)


def _pending(rt: Runtime, request_id: str, trigger: str, state: dict | None,
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
    if state and state["state"] in _RESUMABLE:
        # A crash after Tyk applied our decision but before we recorded it: done.
        rt.store.save_state(request_id, state=st.APPLIED, applied_at=st.now_iso(),
                            already_processed=True)
        rt.store.log("applied", request_id, outcome=state.get("outcome"), trigger=trigger,
                     already_processed=True, decision_id=state.get("decision_id"))
        notify.enqueue_notifications(rt.queue, rt.settings,
                                     {**state, "state": st.APPLIED}, request_id)
    elif record:
        rt.store.save_state(request_id, state=st.SKIPPED, reason=why, updated_at=st.now_iso())
        rt.store.log("skipped", request_id, reason=why, trigger=trigger)
        log.info("key request %s skipped: %s", request_id, why)
    if state and state.get("state") == st.WAITING:
        rt.store.unpark(request_id, state.get("developer_id"))
    return None


def _undecided(rt: Runtime, ref: str, trigger: str, state: dict | None,
               exc: Exception) -> None:
    """Record why the pipeline stopped before deciding: in the request's state, and in the
    log when no retry can help (the job then fails at once: `decisions list --failed`)."""
    error, final = _describe(exc), permanent(exc)
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
        context = gather(rt, request)
        decision = evaluate(rt.rules.current(), Facts(context))
        # Left for a person (or a fact): what the developer holds now, to tell which key
        # an approval made in Tyk meanwhile produced (_decided_in_tyk).
        held = (rt.source(request.ref)[0].held(request)
                if decision.outcome in ("review", "wait") else ())
    except Exception as exc:
        _undecided(rt, request.ref, trigger, previous, exc)
        raise
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
        # The billing state this was decided on (see stale_wait).
        billing_ts=(context.billing or {}).get("updated_ts") if wait else "",
        held_before=list(held),
        **review.describe(context),
    )
    if previous and previous.get("state") == st.WAITING and not wait:
        rt.store.unpark(request.ref, request.developer_id)
    if record["state"] != st.APPLYING:
        return Result(request.ref, record["state"], outcome, rule, reason)
    return _apply(rt, request, record, trigger, recorded=True)


def _record(rt: Runtime, request, trigger: str, *, outcome: str, rule: str,
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
        # What _apply writes before its Dashboard call, written here already (the outbox).
        fields = {**record, "updated_at": st.now_iso()}

    def counters(pipe) -> None:
        metrics.count_decision(pipe, outcome, rule)
        if wait:
            rt.store.queue_park(pipe, request.ref, request.developer_id, wait["deadline"])

    # The state, the counters, the wait and the log entry: one MULTI/EXEC round trip.
    rt.store.save_and_log(request.ref, fields, "decided",
                          {k: v for k, v in record.items() if k != "state"}, also=counters)
    logs.bind(decision_id=record["decision_id"])
    log.info("key request %s decided %s by %s: %s", request.ref, outcome, rule or "default",
             reason)
    # Announces review and wait now; approve/deny are announced by _apply once carried out.
    notify.enqueue_notifications(rt.queue, rt.settings, record, request.ref)
    return record


def _apply(rt: Runtime, request, record: dict, trigger: str,
           recorded: bool = False, held_before: tuple[str, ...] | None = None) -> Result:
    """Carry a recorded approve or deny out in Tyk; an answer of 'already done' is done.

    `recorded`: the record was just written by _record, as "applying" (with updated_at)
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
            ref, {"state": st.FAILED, "error": _describe(exc), "updated_at": st.now_iso(),
                  "error_permanent": permanent(exc)},
            "apply_failed", {"outcome": outcome, "error": _describe(exc), "trigger": trigger})
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
    notify.enqueue_notifications(rt.queue, rt.settings,
                                 {**record, **fields, "state": st.APPLIED}, ref)
    return Result(ref, st.APPLIED, outcome, record.get("rule") or None, record.get("reason"),
                  applied_now=True)


def _describe(exc: Exception) -> str:
    # Our error classes build their messages without secrets; anything else is named only.
    return str(exc) if isinstance(exc, ApproverError) else type(exc).__name__
