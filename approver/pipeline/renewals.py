"""Renewal by a person (a grant's `renew: review`): at the reminder the grant becomes a
renewal item in the review inbox; a person's approve extends it by its period from its
current end (`grant_renewed`, with who), a deny or no decision lets it end.

Nothing is called in Tyk: the key request was approved there long ago and its keys are
in force, so a renewal is decided in Redis alone (`state.renewals`), never through the
claims that carry a pending request's decision to Tyk. Who may decide is the check every
channel uses (`steps.may_decide`: anyone signed in, not for their own email address); a
grant comes from an approve rule, which has no `approvals:` steps to go through again.
"""

from __future__ import annotations

import logging

from approver import state as st
from approver.pipeline import review
from approver.pipeline.deadlines import mail_once
from approver.pipeline.steps import NotYours, Person, may_decide
from approver.state import grants, renewals

log = logging.getLogger(__name__)

CLOSED_BY = "revocation"  # who the log names for a renewal closed by its keys' revocation


def decide(rt, ref: str, renewal_id: str, outcome: str, reason: str,
           person: Person, via: str, origin: str, admins: str | None = None) -> dict:
    """A person approves or denies the open renewal they saw (`renewal_id`): approved, the
    grant is extended now; the developer is mailed either way. Refused (NotYours: may not;
    Refused: not open, not the one they saw, decided meanwhile), logged either way."""
    store = rt.store
    if outcome not in ("approve", "deny"):
        raise review.Refused(f"unknown decision {outcome!r}: approve or deny")
    reason = review.clean_reason(reason, required=outcome == "deny")
    audit = {"outcome": outcome, "reason": reason, "by": person.name, "via": via,
             "from": origin, "renewal_id": str(renewal_id)[:64]}
    record = store.state(ref) or {}
    why = may_decide(person, record, admins, outcome)
    if why:
        store.log("renewal_refused", ref, why=why, **audit)
        raise NotYours(f"key request {ref}: {why}")
    state = renewals.APPROVED if outcome == "approve" else renewals.DENIED
    won, renewal = renewals.decide(store.redis, ref, str(renewal_id), state, by=person.name,
                                   via=via, reason=reason, decided_from=origin)
    if not won:
        why = _not_open(renewal, str(renewal_id))
        store.log("renewal_refused", ref, why=why, **audit)
        raise review.Refused(f"key request {ref}: {why}")
    if outcome == "deny":
        store.log("renewal_denied", ref, expires_at=renewal.get("ends"), **audit)
    else:
        extend(store, ref, renewal)
    _tell(rt, ref, renewal, outcome == "approve")
    return renewal


def _tell(rt, ref: str, renewal: dict, renewed: bool) -> None:
    """Mail the developer whether their access was renewed, and when it ends now."""
    record = rt.store.state(ref) or {}
    email = record.get("developer_email")
    if not email:
        return
    mail_once(rt, "developer_renewal_decided", [email], {
        "request_id": ref, "developer_email": email, "renewed": renewed,
        "ends": record.get("expires_at") if renewed else renewal.get("ends"),
        "policies": list(record.get("policy_names") or record.get("policies") or []),
        "decision_id": f"{record.get('decision_id') or ref}-renewal-{renewal['renewal_id']}"},
        f"renewal decided for key request {ref}")


def open_for(store: st.Store, ref: str, record: dict, now: float) -> dict:
    """Put the grant's renewal in the inbox (at its reminder); logged `renewal_opened`."""
    renewal = renewals.open_renewal(store.redis, ref, record["expires_at"],
                                    float(record["expires_ts"]), now)
    store.log("renewal_opened", ref, by="grant", via="grant", renewal_id=renewal["renewal_id"],
              expires_at=record["expires_at"])
    log.info("grant of key request %s: its renewal awaits a person until %s", ref,
             record["expires_at"])
    return renewal


def _not_open(renewal: dict, renewal_id: str) -> str:
    if not renewal:
        return "no renewal of its access awaits a decision"
    if renewal.get("renewal_id") != renewal_id:
        return "that is not the renewal awaiting a decision: look again"
    if renewal.get("state") == renewals.LAPSED:
        return f"its {renewals.label(renewal)} was not decided in time: the access ended"
    if renewal.get("state") == renewals.ENDED:
        return (f"its {renewals.label(renewal)} was closed: "
                f"{renewal.get('reason') or 'the access ended'}")
    return (f"its {renewals.label(renewal)} was already {renewal.get('state')} by "
            f"{renewal.get('by') or '?'}")


def close(store: st.Store, ref: str, why: str) -> bool:
    """The access an open renewal is about ended another way (`why`: its keys were revoked,
    by billing): the renewal leaves the inbox undecided, and a person's decision on it is
    refused from now on. Logged `renewal_closed`; False if none was open."""
    renewal = renewals.get(store.redis, ref)
    if not renewal or renewal.get("state") != renewals.OPEN:
        return False
    won, _ = _undecided(store, ref, renewal, renewals.ENDED, CLOSED_BY, "renewal_closed",
                        reason=why)
    if won:
        log.info("grant of key request %s: its open renewal closed, %s", ref, why)
    return won


def _undecided(store: st.Store, ref: str, renewal: dict, state: str, by: str, event: str,
               **fields) -> tuple[bool, dict]:
    """Close the open `renewal` as `state` without a person (lapsed, ended), logged as
    `event` by the one caller that does; (whether this call did, the renewal now)."""
    won, renewal = renewals.decide(store.redis, ref, renewal["renewal_id"], state, by=by,
                                   via=by, **fields)
    if won:
        store.log(event, ref, by=by, via=by, renewal_id=renewal["renewal_id"],
                  expires_at=renewal.get("ends"), **fields)
    return won, renewal


def extend(store: st.Store, ref: str, renewal: dict) -> None:
    """Carry out an approved renewal: the grant runs a period more from the end it was
    about, logged `grant_renewed` with who. Repeatable: the same end and entry values."""
    grant = grants.of(store.state(ref) or {}) or {}
    fields = grants.starts(grant, float(renewal["ends_ts"]))

    def also(pipe) -> None:
        grants.schedule(pipe, ref, fields)
        renewals.mark_applied(pipe, ref, renewal["renewal_id"])

    store.save_and_log(ref, fields, "grant_renewed", {
        "by": renewal.get("by") or "", "via": renewal.get("via") or "",
        "reason": renewal.get("reason") or "", "renewal_id": renewal["renewal_id"],
        "expires_at": fields["expires_at"], "remind_at": fields["remind_at"]}, also=also)
    log.info("grant of key request %s renewed by %s until %s", ref, renewal.get("by"),
             fields["expires_at"])


def at_end(rt, ref: str, record: dict) -> bool:
    """At the grant's end: True if a person renewed it for this end (carried out now if
    an earlier try did not); else its open renewal lapses (logged, the developer told)
    and False."""
    store = rt.store
    renewal = renewals.get(store.redis, ref)
    if not renewal or not record.get("expires_ts"):
        return False
    end, about = float(record["expires_ts"]), float(renewal["ends_ts"])
    if renewal.get("state") == renewals.OPEN and about == end:
        won, renewal = _undecided(store, ref, renewal, renewals.LAPSED, "grant",
                                  "renewal_lapsed")
        if won:
            _tell(rt, ref, renewal, renewed=False)
            return False
    if renewal.get("state") != renewals.APPROVED:
        return False
    extended = float(grants.starts(grants.of(record) or {}, about)["expires_ts"])
    if end not in (about, extended):
        return False  # approved for an earlier end
    if renewal.get("applied") != renewal["renewal_id"]:
        extend(store, ref, renewal)
    # This pass took the grant off its end set, perhaps after the extension put it back:
    # due again at the end in force now.
    now_ends = (store.state(ref) or {}).get("expires_ts")
    if now_ends:
        store.redis.zadd(grants.END_KEY, {ref: float(now_ends)})
    return True
