"""Deadlines of requests with steps, moved forward by the workers' watchdog: a reminder to
the current step's group after `remind_after`, escalation to `escalate_to` after
`escalate_after`, the `on_expire` outcome after `expire_after`; and each group's daily
digest of what waits for it, oldest first.

Nothing here is scheduled in a process: a pass (queued with every reconciler pass) reads
the inbox's entry times and the records in Redis, so deadlines survive restarts and
failover. Each reminder and escalation is acted on once (a flag set atomically in
`state.steps`); an expiry that denies goes through a claim, like a person's deny, so it is
applied once; nothing ever approves on expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from datetime import UTC, datetime

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver import state as st
from approver.pipeline import actions, deciders, review, slackapp, validators
from approver.pipeline.enqueue import notify_queue
from approver.pipeline.notify import mail
from approver.pipeline.runtime import Runtime
from approver.pipeline.steps import standing
from approver.rules.explain import seconds_text
from approver.rules.groups import load as load_contacts
from approver.rules.ruleset import deadline_from
from approver.state import accounts
from approver.state import steps as progress

log = logging.getLogger(__name__)

BY = "deadline"  # who the log names for what a deadline did
DIGEST_KEY = st.PREFIX + "digest:"  # + UTC date: the day's digests were queued


def expiry_reason(seconds: int) -> str:
    """What the developer is told when nobody decided in time: plain words."""
    return (f"Nobody decided your request within {spoken(seconds)}, so it was closed "
            "without access. You may ask again.")


def run(rt: Runtime, now: float | None = None) -> dict:
    """One pass over the inbox: what each request's deadline calls for, once each; then
    the day's digests if not yet sent. Counts of what it did."""
    now = time.time() if now is None else now
    contacts, problems = load_contacts(rt.settings.rules_path)
    for problem in problems:
        log.warning("group contacts: %s", problem)
    done = {"reminded": 0, "escalated": 0, "expired": 0, "digests": 0}
    waiting: dict[str, list[dict]] = {}
    for ref, since in rt.store.inbox():
        state = rt.store.state(ref)
        if not state or state["state"] != st.IN_REVIEW or not state.get("approvals_id"):
            continue
        now_at = standing(rt.store, ref, state)
        validators.ask_if_due(rt, ref, state)  # a validator's step reached since
        _gather(waiting, ref, state, since, now_at, now)
        deadline = deadline_from(state.get("approval_deadline"))
        if deadline is None or since is None:
            continue
        age = now - since
        if deadline.expire_after and age >= deadline.expire_after:
            done["expired"] += _expire(rt, ref, state, deadline)
            continue
        if deadline.escalate_after and age >= deadline.escalate_after and \
                progress.mark(rt.store, ref, state["approvals_id"], "escalated"):
            _tell(rt, "escalated", "group_escalation", deadline.escalate_to, ref, state,
                  now_at, age, contacts)
            done["escalated"] += 1
        if deadline.remind_after and age >= deadline.remind_after and \
                progress.mark(rt.store, ref, state["approvals_id"], "reminded"):
            _tell(rt, "reminded", "group_reminder", _current(now_at)["group"] or
                  rt.settings.admins_group, ref, state, now_at, age, contacts)
            done["reminded"] += 1
    done["digests"] = _digests(rt, waiting, contacts, now)
    return done


def _current(now_at: dict) -> dict:
    rows = now_at["steps"]
    return rows[min(now_at["current"], len(rows) - 1)]


def _expire(rt: Runtime, ref: str, state: dict, deadline) -> int:
    """Apply `on_expire`: deny through a claim (applied once, by a worker); review: the
    steps are dropped and the admins' group decides. 1 if done now."""
    if deadline.on_expire == "review":
        if not progress.mark(rt.store, ref, state["approvals_id"], "expired"):
            return 0
        rt.store.log("expired", ref, outcome="review", by=BY, via=BY,
                     reason=f"no decision within {spoken(deadline.expire_after)}: the steps "
                            "are dropped, the admins' group decides")
        return 1
    try:
        taken = review.claim(rt.store, ref, "deny", expiry_reason(deadline.expire_after), BY,
                             BY, "watchdog")
    except review.Refused:
        return 0  # someone is deciding it now, or it left the inbox: nothing expires
    rt.store.log("expired", ref, outcome="deny", by=BY, via=BY, reason=taken["reason"])
    review.enqueue_claim(rt.queue, ref, taken, rt.settings.retry_delays)
    return 1


def _tell(rt: Runtime, event: str, template: str, group: str | None, ref: str, state: dict,
          now_at: dict, age: float, contacts: dict) -> None:
    """Log what the deadline did, and mail the group's contact (if it has one) and each of
    its members who may decide the step now, with Approve and Deny links of their own."""
    contact = (contacts.get(group or "") or {}).get("email")
    current = _current(now_at)
    rt.store.log(event, ref, by=BY, via=BY, group=group or "", step=current["step"],
                 reason=f"waited {spoken(age)}; told {contact or 'nobody (no contact)'}")
    slackapp.later(rt, slackapp.NOTE, f"slack-{event}-{state['approvals_id']}", ref,
                   f"{event.capitalize()}: waited {spoken(age)} at {current['step']}"
                   f"{f'; {group} was told' if group else ''}.", about=ref)
    if contact:
        values = _values(rt, ref, state, now_at, age) | {
            "group": group, "decision_id": f"{state['approvals_id']}-{event}"}
        mail_once(rt, template, [contact], values, f"{event} about key request {ref}")
    for name, email in _members(rt, group, ref, contact):
        values = _values(rt, ref, state, now_at, age) | {
            "group": group, "decision_id": f"{state['approvals_id']}-{event}-{_tag(name)}",
            "link_subject": f"local:{name}",
            "link_step": actions.step_of(state, now_at["current"])}
        mail_once(rt, template, [email], values, f"{event} about key request {ref}")


def _members(rt: Runtime, group: str | None, ref: str, contact: str | None):
    """(name, email) of each local account in `group` with an email (not the group's own
    address) who may decide the request's current step now (`deciders.may_decide`)."""
    if not group or not rt.settings.public_url:
        return
    for name in accounts.names(rt.store):
        found = accounts.profile(rt.store, name) or {}
        email = mail.address(found.get("email"))
        if group in found.get("groups", ()) and email and email != contact and \
                deciders.may_decide(f"local:{name}", ref, rt.store, rt.settings) is None:
            yield name, email


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]  # job ids: letters, digits


def _values(rt: Runtime, ref: str, state: dict, now_at: dict, age: float) -> dict:
    current = _current(now_at)
    base = rt.settings.public_url
    return {"request_id": ref, "developer_email": state.get("developer_email") or "",
            "policies": list(state.get("policy_names") or state.get("policies") or []),
            "rule": state.get("rule") or "default", "reason": state.get("reason") or "",
            "step": current["step"], "left": current["left"], "waited": spoken(age),
            "console_url": f"{base}/console/requests/{ref}" if base else ""}


def mail_once(rt: Runtime, template: str, recipients: list[str], values: dict,
              description: str) -> None:
    """Queue one email (once per template and `values["decision_id"]`) when mail is set up."""
    if not rt.settings.smtp_url:
        return
    with contextlib.suppress(DuplicateJobError):  # queued before: once is enough
        notify_queue(rt.queue).enqueue(
            mail.SEND, template, recipients, values,
            job_id=f"mail-{template}-{values['decision_id']}", unique=True,
            retry=Retry(max=len(mail.RETRY_DELAYS), interval=list(mail.RETRY_DELAYS)),
            job_timeout=60, result_ttl=mail.KEEP, failure_ttl=mail.KEEP,
            description=f"email {description}")


def _gather(waiting: dict, ref: str, state: dict, since, now_at: dict, now: float) -> None:
    """Note the request under the group its current step waits for (the digest)."""
    group = _current(now_at)["group"]
    if group and since is not None:
        waiting.setdefault(group, []).append({"ref": ref, "state": state, "since": since,
                                              "now_at": now_at, "age": now - since})


def _digests(rt: Runtime, waiting: dict, contacts: dict, now: float) -> int:
    """Once a day (the first pass after midnight UTC): each group with a contact is mailed
    what waits for it, oldest first. How many digests were queued."""
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    if not waiting or not rt.redis.set(DIGEST_KEY + day, "1", nx=True, ex=2 * 86400):
        return 0
    sent = 0
    for group, rows in sorted(waiting.items()):
        rows = sorted(rows, key=lambda r: r["since"])
        requests = [_values(rt, r["ref"], r["state"], r["now_at"], r["age"]) | {
            "request_id": r["ref"]} for r in rows]
        tag = _tag(group)
        slackapp.later(rt, slackapp.DIGEST, f"slack-digest-{day}-{tag}", group, requests,
                       about=f"group {group}")
        contact = (contacts.get(group) or {}).get("email")
        if not contact:
            continue
        rt.store.log("digest", "", by=BY, via=BY, group=group, count=len(requests))
        mail_once(rt, "group_digest", [contact], {"group": group, "requests": requests,
                                              "decision_id": f"digest-{group}-{day}"},
              f"digest for {group}")
        sent += 1
    return sent


def spoken(seconds: float) -> str:
    """A duration in words: 14 days, 4 hours, 30 minutes."""
    text = seconds_text(max(60, int(seconds) // 60 * 60))
    number, unit = int(text[:-1]), {"d": "day", "h": "hour", "m": "minute", "s": "second"}[
        text[-1]]
    return f"{number} {unit}{'' if number == 1 else 's'}"
