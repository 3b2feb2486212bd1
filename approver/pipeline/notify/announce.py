"""Announcing a decision, whoever took it: a worker queues its notifications and mail at
once; a command queues one `announce` job, so a worker chooses them with its own settings."""

from __future__ import annotations

import logging

from rq import Retry
from rq.exceptions import DuplicateJobError

from approver.pipeline.enqueue import notify_queue
from approver.pipeline.notify.events import (
    JOB_TIMEOUT,
    KEEP,
    RETRY_DELAYS,
    describe_error,
    enqueue_notifications,
    event_id,
)

log = logging.getLogger(__name__)

# The job's dotted path, kept in approver/notify.py: queued jobs and older workers name it.
ANNOUNCE = "approver.notify.announce"
# What an announce job carries of a decision record: what events_for and mail read.
_ANNOUNCED = ("decision_id", "outcome", "state", "mode", "rule", "reason", "message",
              "revision", "portal", "developer_id", "developer_email", "policies",
              "policy_names", "decided_at", "decided_by", "waited_since", "deadline", "wait")


def tell(rt, record: dict, request_id: str, strict: bool = False) -> None:
    """Queue what a decision announces, whoever decided: chosen here in a worker, else
    (a command) one `announce` job, so a worker chooses them with its own settings (the
    command's environment may have no mail or webhook settings). Raises only if `strict`
    (a failure to queue, for the caller to try again later)."""
    if rt.notify_here:
        enqueue_notifications(rt.queue, rt.settings, record, request_id, strict=strict)
        return
    try:
        notify_queue(rt.queue, rt.settings.queue_name).enqueue(
            ANNOUNCE, request_id, {k: record[k] for k in _ANNOUNCED if k in record},
            # Per state: a decision is recorded (applying), then announced once applied.
            job_id=f"announce-{event_id(record, request_id)}-{record.get('state')}",
            unique=True,
            retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
            job_timeout=JOB_TIMEOUT, result_ttl=KEEP, failure_ttl=KEEP,
            description=f"announce the decision on key request {request_id}")
    except DuplicateJobError:
        pass
    except Exception as exc:  # the decision path must never fail on a notification
        if strict:
            raise
        log.warning("notifications for key request %s not queued: %s", request_id,
                    describe_error(exc))


def announce(request_id: str, record: dict) -> int:
    """RQ job: queue a decision's notifications and mail with this worker's settings."""
    from approver.pipeline import runtime

    rt = runtime.current()
    return enqueue_notifications(rt.queue, rt.settings, record, request_id)
