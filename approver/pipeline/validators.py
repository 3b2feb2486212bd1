"""Validators: a step of a rule handed to an outside system (`validator: crm`), asked over
HTTP and answering for the step: approve passes it, deny ends the request denied, review
leaves it to people.

The request, the developer and the facts are POSTed, signed as Standard Webhooks with the
validator's secret (the notifications' signing). An answer `202` means "later": the
system posts its decision, signed the same way, to `/validators/<name>/answers` (web/), and
`settle` takes it from there. A timeout, an error or a bad answer is retried with back-off;
after the last try the step stays with people (the admins' group): never an approval.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

import requests
from rq import Retry, get_current_job

from approver import state as st
from approver.errors import ApproverError
from approver.pipeline import outside, review, slackapp
from approver.pipeline.notify.delivery import sign
from approver.pipeline.runtime import Runtime
from approver.pipeline.steps import standing
from approver.state import steps as progress

log = logging.getLogger(__name__)

# The jobs' dotted paths, kept in approver/jobs.py.
VALIDATE_JOB = "approver.jobs.validate"
ANSWER_JOB = "approver.jobs.validator_answer"
DECISIONS = ("approve", "deny", "review")
FACTS_LIMIT = 8 * 1024  # bytes of facts a validator's answer may add to the record
VIA = "validator"


class Unanswered(ApproverError):
    """The validator did not give a usable answer this time (RQ retries the job)."""


def person(name: str) -> str:
    """How a validator is named in the log: `validator:crm`."""
    return f"{VIA}:{name}"


def ask_if_due(rt: Runtime, ref: str, state: dict | None = None) -> bool:
    """Queue the call to the validator whose step a request is at, once per step (or the
    mail to the outside approver whose step it is: `pipeline/outside.py`); and the request's
    post to its group's Slack channel, when its steps moved on to another channel."""
    state = state if state is not None else rt.store.state(ref) or {}
    if state.get("state") != st.IN_REVIEW or not state.get("approvals_id"):
        return False
    now = standing(rt.store, ref, state)
    step = now["current"]
    slackapp.step_reached(rt, ref, state, now)
    if step < len(now["steps"]) and now["steps"][step]["email"]:
        return outside.mail_step(rt, ref, state, step, now["steps"][step]["email"])
    if step >= len(now["steps"]) or not now["steps"][step]["validator"]:
        return False
    aid = state["approvals_id"]
    if not progress.mark(rt.store, ref, aid, f"asked:{step}"):
        return False
    delays = list(rt.settings.retry_delays)
    rt.queue.enqueue(VALIDATE_JOB, ref, aid, step, job_id=f"validate-{aid}-{step}",
                     retry=Retry(max=len(delays), interval=delays) if delays else None,
                     job_timeout=120, result_ttl=0, failure_ttl=30 * 86400,
                     description=f"ask validator {now['steps'][step]['validator']} about "
                                 f"key request {ref}")
    return True


def _at(rt: Runtime, ref: str, aid: str, step: int, name: str | None = None):
    """The request's record and its current validator step's name, if it is still at it."""
    state = rt.store.state(ref) or {}
    if state.get("state") != st.IN_REVIEW or state.get("approvals_id") != aid:
        return state, None
    now = standing(rt.store, ref, state)
    if now["current"] != step or step >= len(now["steps"]):
        return state, None
    found = now["steps"][step]["validator"]
    return state, found if found and (name is None or found == name) else None


def validate(rt: Runtime, ref: str, aid: str, step: int) -> dict:
    """Ask the validator of step `step`; settle its answer, or note it answers later."""
    state, name = _at(rt, ref, aid, step)
    if name is None:
        return {"skipped": "the request is no longer at this validator's step"}
    validator = next((v for v in rt.settings.validators if v.name == name), None)
    if validator is None:
        return _unknown(rt, ref, name, step, "not configured (APPROVER_VALIDATORS)")
    body = json.dumps({"type": "key_request.validate", "data": {
        "key_request_id": ref, "step": step, "validator": name,
        "developer": {"id": state.get("developer_id") or "",
                      "email": state.get("developer_email") or "",
                      "name": state.get("developer_name") or "",
                      "fields": state.get("developer_fields") or {}},
        "request": {"policies": state.get("policies") or [],
                    "policy_names": state.get("policy_names") or [],
                    "fields": state.get("request_fields") or {},
                    "rule": state.get("rule") or ""},
        "facts": state.get("facts") or {},
        "ask_id": f"msg_{aid}-{step}",
        "answer_url": (f"{rt.settings.public_url}/validators/{name}/answers"
                       if rt.settings.public_url else None)}},
        sort_keys=True, default=str).encode()
    msg_id, stamp = f"msg_{aid}-{step}", int(time.time())
    headers = {"content-type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(stamp),
               "webhook-signature": sign(validator.secret, msg_id, stamp, body)}
    try:
        response = requests.post(validator.url, data=body, headers=headers,
                                 timeout=validator.timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return _retry_or_unknown(rt, ref, name, step, f"no answer ({type(exc).__name__})")
    if response.status_code == 202:
        rt.store.log("validator_pending", ref, by=person(name), via=VIA, step_index=step,
                     reason="it answers later, at its answer endpoint")
        return {"pending": name}
    if response.status_code != 200:
        return _retry_or_unknown(rt, ref, name, step, f"answered {response.status_code}")
    try:
        answer = parse_answer(response.json())
    except (ValueError, Unanswered) as exc:
        return _retry_or_unknown(rt, ref, name, step, f"bad answer: {exc}")
    return settle(rt, ref, aid, step, name, answer)


ASK_ID = re.compile(r"msg_([0-9a-f]{32})-([0-9]{1,2})\Z")


def late_answer(rt: Runtime, name: str, answer: dict) -> dict:
    """A validator's answer posted later, to the ask it names (`ask_id`), settled."""
    found = ASK_ID.match(str(answer.get("ask_id") or ""))
    ref = str(answer.get("key_request_id") or "")
    if found is None:
        return {"ignored": "no ask_id of ours"}
    return settle(rt, ref, found.group(1), int(found.group(2)), name, parse_answer(answer))


def parse_answer(document) -> dict:
    """`{"decision", "reason", "facts"}` checked; Unanswered saying what is wrong."""
    if not isinstance(document, dict):
        raise Unanswered("not a JSON object")
    decision, reason = document.get("decision"), document.get("reason", "")
    facts = document.get("facts", {})
    if decision not in DECISIONS:
        raise Unanswered(f"decision is {str(decision)[:20]!r}, not approve, deny or review")
    if not isinstance(reason, str) or len(reason) > review.REASON_LIMIT:
        raise Unanswered(f"reason is not text of at most {review.REASON_LIMIT} characters")
    if not isinstance(facts, dict) or len(json.dumps(facts, default=str)) > FACTS_LIMIT:
        raise Unanswered(f"facts is not an object of at most {FACTS_LIMIT} bytes")
    return {"decision": decision, "reason": review.clean_reason(reason, required=False),
            "facts": facts}


def settle(rt: Runtime, ref: str, aid: str, step: int, name: str, answer: dict) -> dict:
    """Carry out a validator's answer for its step, if the request is still at it."""
    state, at = _at(rt, ref, aid, step, name)
    if at is None:
        rt.store.log("validator_ignored", ref, by=person(name), via=VIA, step_index=step,
                     why="the request is no longer at this validator's step")
        return {"ignored": "no longer at this step"}
    if not progress.mark(rt.store, ref, aid, f"answered:{step}"):
        rt.store.log("validator_ignored", ref, by=person(name), via=VIA, step_index=step,
                     why="this step was answered already (an answer counts once)")
        return {"ignored": "answered already"}
    decision, reason = answer["decision"], answer["reason"]
    rt.store.log("validated", ref, by=person(name), via=VIA, outcome=decision, reason=reason,
                 facts=answer["facts"], step=f"validator {name}", step_index=step)
    rt.store.save_state(ref, validator_facts={**(state.get("validator_facts") or {}),
                                              name: answer["facts"]})
    if decision == "review":
        return {"left_to_people": name}
    who = person(name)
    if decision == "deny":
        taken = review.claim(rt.store, ref, "deny", reason or f"declined by {name}", who, VIA,
                             name)
        review.enqueue_claim(rt.queue, ref, taken, rt.settings.retry_delays)
        return {"denied": name}
    taken = {"claim_id": uuid.uuid4().hex, "outcome": "approve", "reason": reason, "by": who,
             "via": VIA, "from": name, "claimed_at": st.now_iso()}
    done, _ = progress.approve(rt.store, ref, aid, step, who, 1,
                               len(state.get("approvals") or []), False, taken)
    if done == progress.COMPLETE:
        rt.store.log("claimed", ref, claim_id=taken["claim_id"], outcome="approve",
                     reason=reason, by=who, via=VIA, **{"from": name})
        review.enqueue_claim(rt.queue, ref, taken, rt.settings.retry_delays)
    elif done == progress.PASSED:
        ask_if_due(rt, ref)
    return {"approved": name, "step": done}


def _retry_or_unknown(rt: Runtime, ref: str, name: str, step: int, why: str) -> dict:
    job = get_current_job()
    if job is not None and (job.retries_left or 0) > 0:
        log.info("validator %s on key request %s: %s; retried", name, ref, why)
        raise Unanswered(f"validator {name}: {why}")
    return _unknown(rt, ref, name, step, why)


def _unknown(rt: Runtime, ref: str, name: str, step: int, why: str) -> dict:
    """No usable answer after the last try: the step stays with people (fail-safe)."""
    rt.store.log("validator_unknown", ref, by=person(name), via=VIA, step_index=step,
                 why=f"{why}; the step stays with people")
    log.warning("validator %s on key request %s: %s; left to people", name, ref, why)
    return {"unknown": name, "why": why}
