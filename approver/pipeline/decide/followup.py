"""What follows a recorded decision: telling people, and a billing check after an approval.

Marked in the transaction that records the decision and unmarked once queued, so a crash
in between leaves the mark for the reconciler, which queues it again (job ids make a
repeat collapse into what was queued already): no notification or check is lost.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver import state as st
from approver.pipeline import notify
from approver.pipeline.decide.result import describe
from approver.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

# The job's dotted path, kept in approver/jobs.py: queued jobs and older workers name it.
BILLING_CHECK = "approver.jobs.billing_check"
# Billing states in which a paid key may have to be revoked (pipeline/billing.py: react).
UNPAID = frozenset({"canceled", "past_due"})
# Seconds a mark may stay before the reconciler takes its follow-up for lost.
LOST_AFTER = 30


def follow_up(rt: Runtime, ref: str, record: dict) -> bool:
    """Queue the notifications of a decision record (and, for an approval, a billing check
    if the developer does not pay now), then unmark it; False if that failed (kept)."""
    try:
        notify.tell(rt, record, ref, strict=True)
        if record.get("outcome") == "approve" and record.get("state") == st.APPLIED:
            _check_billing(rt, record)
        rt.store.followed_up(ref)
    except Exception as exc:  # Redis away: the reconciler queues it later
        log.warning("follow-up of key request %s not queued yet: %s", ref, describe(exc))
        return False
    return True


def _check_billing(rt: Runtime, record: dict) -> None:
    """An approval recorded while billing says `canceled` or `past_due`: whoever stored
    that may have read the developer's keys before this one was recorded, so the billing
    reaction is run again. Read after the keys were recorded: one side always sees the
    other."""
    developer_id = record.get("developer_id")
    if not developer_id or (rt.billing.get(developer_id) or {}).get("status") not in UNPAID:
        return
    with contextlib.suppress(DuplicateJobError):  # queued for this decision already
        delays = rt.settings.retry_delays
        rt.queue.enqueue(BILLING_CHECK, developer_id, unique=True,
                         job_id=f"billcheck-{record.get('decision_id') or uuid.uuid4().hex}",
                         retry=Retry(max=len(delays), interval=list(delays)) if delays else None,
                         description=f"billing check of {developer_id} after an approval")


def redo_lost(rt: Runtime) -> list[str]:
    """Queue the follow-ups a crash left marked (the reconciler); the requests done."""
    done = []
    for ref in rt.store.followups_due(time.time() - LOST_AFTER):
        record = rt.store.state(ref)
        if record is None:  # dropped by retention meanwhile: nothing to tell
            rt.store.followed_up(ref)
        elif follow_up(rt, ref, record):
            done.append(ref)
    return done
