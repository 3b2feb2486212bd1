"""Putting work on the queue: job ids that make duplicate deliveries collapse into one job."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

DECIDE = "approver.jobs.decide_request"
RECONCILE = "approver.jobs.reconcile_pass"
JOB_TIMEOUT = 90
# RQ job ids allow letters, digits, "_" and "-" only; Tyk's ids are 24-hex ObjectIds.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def decide_job_id(request_id: str) -> str:
    """The job id for deciding one key request."""
    return f"kr-{request_id}"


def decision(queue: Queue, request_id: str, trigger: str, retry_delays=(1,),
             pipeline=None) -> bool:
    """Queue the decision of one request; False if a job for it is already there."""
    try:
        # job_id alone does not deduplicate in RQ 3 (it overwrites and queues twice);
        # unique=True makes the check atomic.
        queue.enqueue(
            DECIDE, request_id, trigger,
            job_id=decide_job_id(request_id), unique=True,
            retry=Retry(max=len(retry_delays), interval=list(retry_delays))
            if retry_delays else None,
            # No result kept: the request's state in Redis is the result, and a finished
            # job must not block the next trigger (a billing change, a deadline).
            job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=30 * 86400,
            description=f"decide key request {request_id} ({trigger})",
            pipeline=pipeline,
        )
    except DuplicateJobError:
        return False
    return True


def reconcile(queue: Queue, interval: int) -> bool:
    """Schedule the next periodic reconciler pass: one per time slot, however many ask."""
    slot = int(time.time() // interval) + 1
    try:
        queue.enqueue_at(
            datetime.fromtimestamp(slot * interval, UTC), RECONCILE,
            job_id=f"reconcile-{interval}-{slot}", unique=True,
            job_timeout=max(JOB_TIMEOUT, interval), result_ttl=interval * 2,
            description="periodic reconciler pass",
        )
    except DuplicateJobError:
        return False
    return True
