"""What a worker does with a billing event: record the status, release waits, revoke keys."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from datetime import UTC, datetime

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver.pipeline import decide, renewals
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import PENDING_KEY, RevocationRefused, shown
from approver.state import Locked
from approver.state.history import History

log = logging.getLogger(__name__)

# The job's dotted path, kept in approver/jobs.py: queued jobs and older workers name it.
CHECK = "approver.jobs.billing_check"
# Seconds a scheduled check may run early (another host's clock) and still act: rescheduled
# under the same job id while it runs, it would be taken for a duplicate and dropped.
CLOCK_SKEW = 2.0


def handle(rt: Runtime, event: dict) -> dict:
    """Act on one verified, normalised billing event.

    The event is stored (if newer than the state held); what follows is decided from the
    developer's state as stored now, never from the event, under the developer's lock, so
    that two workers taking two events of one developer react one after the other.
    """
    data = event["data"]
    if event["type"] == "key_request.decision":
        result = decide.decide_explicitly(
            rt, data["key_request_id"], data["decision"], data.get("reason") or "",
            source=f"billing:{event.get('id', '')}",
        )
        return result.to_dict()
    developer_id = _developer_id(rt, data)
    if developer_id is None:
        rt.store.log("billing_ignored", "", event_id=event.get("id"),
                     reason="no Tyk developer has this id or email")
        return {"status": "unknown developer"}
    changed = rt.billing.apply(
        developer_id, data["status"], data.get("plan") or "", data["occurred_at"]
    )
    rt.store.log("billing", "", developer_id=developer_id, status=data["status"],
                 plan=data.get("plan") or "", occurred_at=data["occurred_at"],
                 event_id=event.get("id"), applied=changed)
    if not changed and not _held(rt, developer_id, data):
        return {"status": "stale", "developer_id": developer_id}
    with rt.store.developer_lock(developer_id):
        # Stored before (`not changed`): a retry of this event, whose first try failed after
        # storing it. What it set off is done again, for the waits not yet decided on it.
        released = [_reevaluate(rt, request_id)
                    for request_id in rt.store.waiting_for(developer_id)
                    if changed or decide.stale_wait(rt, request_id)]
        revoked = react(rt, developer_id)
    return {"status": "applied", "developer_id": developer_id, "released": released,
            "revoked": revoked}


def react(rt: Runtime, developer_id: str, early: float = 0.0) -> list[str]:
    """Revoke the developer's paid keys if their billing state now calls for it, or check
    again when it will; the shown ids of the keys revoked. Under the developer's lock.

    `canceled` revokes once it has been the newest state for APPROVER_BILLING_CANCEL_SETTLE
    (a plan switch's `canceled` then `active` costs no key); `past_due`, once the grace
    period since it began has passed (if there is one). `early`: seconds a scheduled check
    may run before its time (hosts' clocks differ) and still count as on time.
    """
    current = rt.billing.get(developer_id) or {}
    status, since = current.get("status"), current.get("updated_ts")
    if status == "canceled":
        due = (current.get("stored_ts") or since or 0) + rt.settings.billing_cancel_settle
        reason = "billing canceled"
    elif status == "past_due" and rt.settings.past_due_grace is not None and since:
        due = since + rt.settings.past_due_grace
        reason = "billing past due beyond the grace period"
    else:
        return []
    if time.time() + early < due:
        _schedule_check(rt, developer_id, status, current["updated_at"], due)
        return []
    return revoke_paid_keys(rt, developer_id, reason=reason)


def check(rt: Runtime, developer_id: str) -> dict:
    """A scheduled check (or one queued after an approval): react to the state now."""
    with rt.store.developer_lock(developer_id):
        revoked = react(rt, developer_id, early=CLOCK_SKEW)
    return {"status": "revoked" if revoked else "nothing to revoke",
            "developer_id": developer_id, "revoked": revoked}


def past_due_check(rt: Runtime, developer_id: str, occurred_at: str) -> dict:
    """After the grace period: revoke if the developer is still past due since then.

    Kept for checks queued by earlier versions; `check` does the same for any state.
    """
    current = rt.billing.get(developer_id) or {}
    if current.get("status") != "past_due" or current.get("updated_at") != occurred_at:
        return {"status": "recovered or changed", "developer_id": developer_id}
    return check(rt, developer_id)


def revoke_paid_keys(rt: Runtime, developer_id: str, reason: str) -> list[str]:
    """Revoke the keys this service approved for the developer's paid policies; repeatable."""
    paid = set(rt.settings.paid_policy_tags)
    revoked = []
    for key_id, about in rt.store.approved_keys(developer_id).items():
        if about.get("revoked_at"):
            continue
        source = rt.sources.get(about.get("portal") or "classic")
        if source is None:
            continue
        tags = set()
        for policy_id in about.get("policies", []):
            tags |= source.policy_tags(policy_id)
        if not tags & paid:
            continue
        if revoke_key(rt, source, developer_id, key_id, about, reason):
            revoked.append(shown(key_id))
    return revoked


def revoke_key(rt: Runtime, source, developer_id: str, key_id: str, about: dict,
               reason: str) -> bool:
    """Revoke one key this service approved, record it and log it; False if the key was
    not generated yet (nothing to revoke). Tyk's errors are raised."""
    # Classic: the key (or OAuth client) is found in the developer's record by the
    # fingerprint kept at approval and deleted through its endpoint; the key itself
    # was never stored (docs/tyk-compatibility.md). New portal: the access request.
    try:
        existed = source.revoke(developer_id, key_id, about)
    except RevocationRefused as exc:
        # Not revoked, and never counted so: the job fails (tried again, then kept among
        # the failed jobs) and the log says why, once a day per key and outcome.
        if rt.store.first_refusal(developer_id, shown(key_id), exc.event):
            rt.store.log(exc.event, about.get("request_id", ""), developer_id=developer_id,
                         key_id=shown(key_id), reason=reason, why=str(exc), **exc.details)
        log.warning("key %s of developer %s not revoked (%s): %s", shown(key_id),
                    developer_id, exc.event, exc)
        raise
    if key_id.startswith(PENDING_KEY) and not existed:
        log.info("key approved by %s for developer %s not generated yet: nothing to "
                 "revoke", about.get("request_id"), developer_id)
        return False
    rt.store.mark_revoked(developer_id, key_id, reason)
    if existed:
        History(rt.redis).record_revoked(developer_id)
    rt.store.log("revoked", about.get("request_id", ""), developer_id=developer_id,
                 key_id=shown(key_id), reason=reason, already_gone=not existed)
    if about.get("request_id"):
        # Nobody is to renew an access that has ended: its open renewal leaves the inbox.
        renewals.close(rt.store, about["request_id"], f"its keys were revoked ({reason})")
    log.info("revoked key %s of developer %s: %s", shown(key_id), developer_id, reason)
    return True


def _developer_id(rt: Runtime, data: dict) -> str | None:
    if data.get("developer_id"):
        return data["developer_id"]
    for source in rt.sources.values():
        found = source.developer_id_by_email(data["developer_email"])
        if found:
            return found
    return None


def _held(rt: Runtime, developer_id: str, data: dict) -> bool:
    """Whether the developer's billing state is the one this event set."""
    held = rt.billing.get(developer_id) or {}
    return held.get("status") == data["status"] and held.get("updated_ts") == round(
        _parse(data["occurred_at"]).timestamp(), 6)


def _reevaluate(rt: Runtime, request_id: str) -> dict:
    try:
        return decide.run(rt, request_id, "billing").to_dict()
    except Locked:
        # The holder decides the wait again once it lets go (decide.run: stale_wait).
        return {"request_id": request_id, "state": "locked"}


def _schedule_check(rt: Runtime, developer_id: str, status: str, since: str,
                    due: float) -> None:
    """Check the developer's billing again at `due`: once per state (scheduled or done)."""
    # RQ keeps whole seconds: rounded up, so the check does not run before its time.
    when = datetime.fromtimestamp(math.ceil(due), UTC)
    prefix = "pastdue" if status == "past_due" else "canceled"
    delays = rt.settings.retry_delays
    with contextlib.suppress(DuplicateJobError):  # the same check is already scheduled
        rt.queue.enqueue_at(
            when, CHECK, developer_id, unique=True,
            # Tried again if the developer's lock stays held (Locked) or Tyk fails.
            retry=Retry(max=len(delays), interval=list(delays)) if delays else None,
            job_id=f"{prefix}-{developer_id}-{int(_parse(since).timestamp() * 1000)}",
            description=f"revoke if {developer_id} is still {status}",
        )


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
