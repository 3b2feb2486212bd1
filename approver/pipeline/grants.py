"""Approvals for a period (a rule's `grant:`), moved forward by the workers' reconciler
pass: the developer is mailed once before the end (`remind_before`), and at the end the
keys the approval produced are revoked in Tyk once, through the portal's adapter (which
reads back to confirm), and the decision log says `grant_expired` with the keys revoked
(fingerprints only).

Nothing here is scheduled in a process: `state.grants` keeps the due times in Redis and
hands each one to a single pass.

Renewal re-certifies, never extends by itself. `renew: rules`: at the reminder (or at the
end, without one) the request goes through the rules in force again, on fresh facts; if
they approve, the grant is extended by a period (the approving rule's grant, else the
same) from its current end, logged `grant_renewed`, and the developer is not reminded.
Any other outcome leaves the grant to end: the developer is reminded. `renew: review`: at
the reminder the grant becomes a renewal item in the review inbox (`pipeline.renewals`)
and the developer is reminded; a person's approve before the end extends it, a deny or
no decision lets it end. Without a reminder nobody is asked before the end, and it ends.
"""

from __future__ import annotations

import logging
import time

from approver import state as st
from approver.pipeline import renewals
from approver.pipeline.billing import revoke_key
from approver.pipeline.deadlines import mail_once, spoken
from approver.pipeline.decide.pending import fetch, gather
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import shown
from approver.rules import Facts, evaluate
from approver.state import grants

log = logging.getLogger(__name__)

BY = "grant"  # who the log names for what a grant's end did


def run(rt: Runtime, now: float | None = None) -> dict:
    """One pass: the reminders and ends due by `now`, each acted on once. Counts."""
    now = time.time() if now is None else now
    done = {"reminded": 0, "renewed": 0, "expired": 0}
    for key, act in ((grants.REMIND_KEY, _remind), (grants.END_KEY, _end)):
        for ref, when in grants.due(rt.redis, key, now):
            if not grants.take(rt.redis, key, ref):
                continue  # another pass has it
            try:
                what = act(rt, ref, rt.store.state(ref) or {}, now)
            except Exception as exc:  # Tyk failed: due again for the next pass
                grants.put_back(rt.redis, key, ref, when)
                log.warning("grant of key request %s: %s failed (%s); tried again next "
                            "pass", ref, act.__name__.strip("_"), type(exc).__name__)
                continue
            if what:
                done[what] += 1
    return done


def _renewed(rt: Runtime, ref: str, record: dict) -> bool:
    """`renew: rules`: the rules decide again on fresh facts; extended if they approve."""
    grant = grants.of(record) or {}
    if grant.get("renew") != "rules":
        return False
    request = fetch(rt, ref)
    decision = evaluate(rt.rules.current(), Facts(gather(rt, request))) if request else None
    if decision is None or decision.outcome != "approve":
        rt.store.log("grant_not_renewed", ref, by=BY, via=BY,
                     outcome=decision.outcome if decision else "gone",
                     rule=(decision.rule_id if decision else "") or "")
        return False
    period = decision.grant.to_dict() if decision.grant else grant
    fields = grants.starts(period, float(record["expires_ts"]))
    rt.store.save_and_log(ref, fields, "grant_renewed", {
        "by": BY, "via": BY, "rule": decision.rule_id or "", "revision": decision.revision,
        "expires_at": fields["expires_at"], "remind_at": fields["remind_at"]},
        also=lambda pipe: grants.schedule(pipe, ref, fields))
    log.info("grant of key request %s renewed by rule %s until %s", ref, decision.rule_id,
             fields["expires_at"])
    return True


def _keys_of(rt: Runtime, ref: str, developer_id: str) -> dict[str, dict]:
    """The keys this approval produced (key id -> what we know of it), revoked ones too."""
    return {key_id: about for key_id, about in rt.store.approved_keys(developer_id).items()
            if about.get("request_id") == ref} if developer_id else {}


def _keys_revoked(rt: Runtime, ref: str, record: dict) -> bool:
    """Whether every key the approval produced was revoked already (by billing)."""
    mine = _keys_of(rt, ref, record.get("developer_id") or "").values()
    return bool(mine) and all(about.get("revoked_at") for about in mine)


def _remind(rt: Runtime, ref: str, record: dict, now: float) -> str | None:
    """Renewed by the rules, or the developer is mailed that their access ends soon:
    plain words, no rule or reason. Neither when its keys were revoked already: that
    access has ended, so nothing is renewed, asked or told."""
    if _keys_revoked(rt, ref, record):
        rt.store.log("grant_not_reminded", ref, by=BY, via=BY,
                     why="its keys were revoked already")
        log.info("grant of key request %s: its keys were revoked already; no reminder, no "
                 "renewal", ref)
        return None
    if _renewed(rt, ref, record):
        return "renewed"
    review = (grants.of(record) or {}).get("renew", "review") == "review"
    if review and record.get("expires_ts"):
        renewals.open_for(rt.store, ref, record, now)
    email = record.get("developer_email")
    if not email or not record.get("expires_ts"):
        log.info("grant of key request %s: no developer email, no reminder", ref)
        return None
    left = max(60, -(-(float(record["expires_ts"]) - now) // 60) * 60)  # whole minutes, up
    rt.store.log("grant_reminded", ref, by=BY, via=BY, expires_at=record["expires_at"])
    mail_once(rt, "developer_grant_reminder", [email], {
        "request_id": ref, "developer_email": email, "ends": record["expires_at"],
        "left": spoken(left),
        "policies": list(record.get("policy_names") or record.get("policies") or []),
        "renewal_review": review,
        # One mail per end: a renewed grant's next reminder is not a duplicate of this one.
        "decision_id": f"{record.get('decision_id') or ref}-grant-reminder-"
                       f"{int(float(record['expires_ts']))}"},
        f"grant reminder for key request {ref}")
    return "reminded"


def _end(rt: Runtime, ref: str, record: dict, now: float) -> str | None:
    """Renewed by the rules (when no reminder asked them already), or the keys the
    approval produced are revoked (those not revoked already); logged."""
    if not (grants.of(record) or {}).get("remind_before") and _renewed(rt, ref, record):
        return "renewed"
    if renewals.at_end(rt, ref, record):
        return "renewed"  # by a person, before the end
    developer_id = record.get("developer_id") or ""
    source = rt.sources.get(record.get("portal") or "classic")
    if source is None or not developer_id:
        log.warning("grant of key request %s: its portal or developer is unknown; "
                    "nothing revoked", ref)
        return None
    rt.redis.zrem(grants.REMIND_KEY, ref)  # ended: no reminder after the end
    revoked = []
    for key_id, about in _keys_of(rt, ref, developer_id).items():
        if about.get("revoked_at"):
            continue
        if revoke_key(rt, source, developer_id, key_id, about, "grant expired"):
            revoked.append(shown(key_id))
    rt.store.save_and_log(ref, {"grant_ended_at": st.now_iso()}, "grant_expired", {
        "by": BY, "via": BY, "developer_id": developer_id,
        "expires_at": record.get("expires_at") or "", "keys_revoked": revoked})
    log.info("grant of key request %s ended: %d key(s) revoked", ref, len(revoked))
    return "expired"
