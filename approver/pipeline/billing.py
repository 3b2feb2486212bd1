"""What a worker does with a billing event: record the status, release waits, revoke keys."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from rq.exceptions import DuplicateJobError

from approver.pipeline import decide
from approver.pipeline.runtime import Runtime
from approver.pipeline.sources import PENDING_KEY, shown
from approver.state import Locked
from approver.state.history import History

log = logging.getLogger(__name__)

# The job's dotted path, kept in approver/jobs.py: queued jobs and older workers name it.
REVOKE_CHECK = "approver.jobs.past_due_check"


def handle(rt: Runtime, event: dict) -> dict:
    """Act on one verified, normalised billing event."""
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
    # Stored before (`not changed`): a retry of this event, whose first try failed after
    # storing it. What it set off is done again, for the waits not yet decided on it.
    released = [_reevaluate(rt, request_id) for request_id in rt.store.waiting_for(developer_id)
                if changed or decide.stale_wait(rt, request_id)]
    revoked: list[str] = []
    if data["status"] == "canceled":
        revoked = revoke_paid_keys(rt, developer_id, reason="billing canceled")
    elif data["status"] == "past_due" and rt.settings.past_due_grace is not None:
        _schedule_past_due_check(rt, developer_id, data["occurred_at"])
    return {"status": "applied", "developer_id": developer_id, "released": released,
            "revoked": revoked}


def past_due_check(rt: Runtime, developer_id: str, occurred_at: str) -> dict:
    """After the grace period: revoke if the developer is still past due since then."""
    current = rt.billing.get(developer_id) or {}
    if current.get("status") != "past_due" or current.get("updated_at") != occurred_at:
        return {"status": "recovered or changed", "developer_id": developer_id}
    return {"status": "revoked", "revoked": revoke_paid_keys(
        rt, developer_id, reason="billing past due beyond the grace period")}


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
        # Classic: the key (or OAuth client) is found in the developer's record by the
        # fingerprint kept at approval and deleted through its endpoint; the key itself
        # was never stored (docs/tyk-compatibility.md). New portal: the access request.
        existed = source.revoke(developer_id, key_id, about)
        if key_id.startswith(PENDING_KEY) and not existed:
            log.info("key approved by %s for developer %s not generated yet: nothing to "
                     "revoke", about.get("request_id"), developer_id)
            continue
        rt.store.mark_revoked(developer_id, key_id, reason)
        if existed:
            History(rt.redis).record_revoked(developer_id)
        rt.store.log("revoked", about.get("request_id", ""), developer_id=developer_id,
                     key_id=shown(key_id), reason=reason, already_gone=not existed)
        log.info("revoked key %s of developer %s: %s", shown(key_id), developer_id, reason)
        revoked.append(shown(key_id))
    return revoked


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


def _schedule_past_due_check(rt: Runtime, developer_id: str, occurred_at: str) -> None:
    when = _parse(occurred_at) + timedelta(seconds=rt.settings.past_due_grace)
    with contextlib.suppress(DuplicateJobError):  # the same check is already scheduled
        rt.queue.enqueue_at(
            when, REVOKE_CHECK, developer_id, occurred_at, unique=True,
            job_id=f"pastdue-{developer_id}-{int(when.timestamp())}",
            description=f"revoke if {developer_id} is still past due",
        )


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
