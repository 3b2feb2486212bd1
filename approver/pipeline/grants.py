"""Approvals for a period (a rule's `grant:`), moved forward by the workers' reconciler
pass: the developer is mailed once before the end (`remind_before`), and at the end the
keys the approval produced are revoked in Tyk once, through the portal's adapter (which
reads back to confirm), and the decision log says `grant_expired` with the keys revoked
(fingerprints only).

Nothing here is scheduled in a process: `state.grants` keeps the due times in Redis and
hands each one to a single pass. Renewal (`renew:`) is recorded with the grant but not
carried out yet: an approval for a period always ends, never extends by itself.
"""

from __future__ import annotations

import logging
import time

from approver.pipeline.billing import revoke_key
from approver.pipeline.deadlines import _mail, _spoken
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import shown
from approver.state import grants

log = logging.getLogger(__name__)

BY = "grant"  # who the log names for what a grant's end did


def run(rt: Runtime, now: float | None = None) -> dict:
    """One pass: the reminders and ends due by `now`, each acted on once. Counts."""
    now = time.time() if now is None else now
    done = {"reminded": 0, "expired": 0}
    for ref, _ in grants.due(rt.redis, grants.REMIND_KEY, now):
        if grants.take(rt.redis, grants.REMIND_KEY, ref):
            done["reminded"] += _remind(rt, ref, now)
    for ref, when in grants.due(rt.redis, grants.END_KEY, now):
        if not grants.take(rt.redis, grants.END_KEY, ref):
            continue  # another pass has it
        try:
            done["expired"] += _end(rt, ref)
        except Exception as exc:  # Tyk failed: the end is due again for the next pass
            grants.put_back(rt.redis, grants.END_KEY, ref, when)
            log.warning("grant of key request %s: revocation failed (%s); tried again "
                        "next pass", ref, type(exc).__name__)
    return done


def _remind(rt: Runtime, ref: str, now: float) -> int:
    """Mail the developer that their access ends soon: plain words, no rule or reason."""
    record = rt.store.state(ref) or {}
    email = record.get("developer_email")
    if not email or not record.get("expires_ts"):
        log.info("grant of key request %s: no developer email, no reminder", ref)
        return 0
    left = max(60, -(-(float(record["expires_ts"]) - now) // 60) * 60)  # whole minutes, up
    rt.store.log("grant_reminded", ref, by=BY, via=BY, expires_at=record["expires_at"])
    _mail(rt, "developer_grant_reminder", [email], {
        "request_id": ref, "developer_email": email, "ends": record["expires_at"],
        "left": _spoken(left),
        "policies": list(record.get("policy_names") or record.get("policies") or []),
        "decision_id": f"{record.get('decision_id') or ref}-grant-reminder"},
        f"grant reminder for key request {ref}")
    return 1


def _end(rt: Runtime, ref: str) -> int:
    """Revoke the keys the approval produced (those not revoked already); log it."""
    record = rt.store.state(ref) or {}
    developer_id = record.get("developer_id") or ""
    source = rt.sources.get(record.get("portal") or "classic")
    if source is None or not developer_id:
        log.warning("grant of key request %s: its portal or developer is unknown; "
                    "nothing revoked", ref)
        return 0
    rt.redis.zrem(grants.REMIND_KEY, ref)  # ended: no reminder after the end
    revoked = []
    for key_id, about in rt.store.approved_keys(developer_id).items():
        if about.get("request_id") != ref or about.get("revoked_at"):
            continue
        if revoke_key(rt, source, developer_id, key_id, about, "grant expired"):
            revoked.append(shown(key_id))
    rt.store.log("grant_expired", ref, by=BY, via=BY, developer_id=developer_id,
                 expires_at=record.get("expires_at") or "", keys_revoked=revoked)
    log.info("grant of key request %s ended: %d key(s) revoked", ref, len(revoked))
    return 1
