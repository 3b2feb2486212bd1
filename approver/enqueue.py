"""Putting work on the queue: job ids that make duplicate deliveries collapse into one job."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from approver.store import PREFIX

DECIDE = "approver.jobs.decide_request"
RECONCILE = "approver.jobs.reconcile_pass"
JOB_TIMEOUT = 90
# RQ job ids allow letters, digits, "_" and "-" only; Tyk's ids are 24-hex ObjectIds.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def decide_job_id(request_id: str) -> str:
    """The job id for deciding one key request."""
    return f"kr-{request_id}"


def decision(queue: Queue, request_id: str, trigger: str, retry_delays=(1,),
             pipeline=None, reclaim: bool = False) -> bool:
    """Queue the decision of one request; False if a job for it is already there.

    With `reclaim` (the reconciler, `approver replay`), a job that holds the id without
    doing anything (failed for good a while ago, or abandoned by a dead worker) is removed
    and the decision queued again.
    """
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
        if reclaim and _reclaim(queue, decide_job_id(request_id), request_id, retry_delays):
            return decision(queue, request_id, trigger, retry_delays, pipeline)
        return False
    return True


ABANDONED_AFTER = 10  # seconds a started job may go without its request's lock held


def _reclaim(queue: Queue, job_id: str, request_id: str, retry_delays) -> bool:
    """Remove a job that blocks its id but will never run again; True if removed."""
    job = queue.fetch_job(job_id)
    if job is None:
        return True  # gone meanwhile: just try again
    status = job.get_status(refresh=False)
    now = datetime.now(UTC)
    if status == JobStatus.FAILED:
        # Left in the failed registry for a while, visible to `decisions list --failed`,
        # then tried again by the reconciler: nothing is given up for good.
        pause = max(retry_delays or (0,), default=0)
        stale = job.ended_at is None or (now - _utc(job.ended_at)).total_seconds() >= pause
    elif status == JobStatus.STARTED:
        # A running decision always holds its request's lock (renewed while it runs): a
        # started job without it, for a while, belongs to a worker that died.
        locked = queue.connection.exists(f"{PREFIX}lock:{request_id}")
        started = job.started_at and (now - _utc(job.started_at)).total_seconds()
        stale = not locked and (started is None or started >= ABANDONED_AFTER)
    else:
        stale = status in (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED)
    if stale:
        job.delete()
    return stale


def requeue_orphans(queue: Queue, worker_name: str, retry_delays=(1,), keep: str | None = None,
                    older_than: float = 0) -> list[str]:
    """Queue again the jobs a worker of ours was running when it lost Redis; their ids.

    The worker object that started them is gone, so they will never finish; RQ would
    find them only after their heartbeat expires. Decisions are safe to run twice.
    """
    orphans = []
    for job_id in StartedJobRegistry(queue=queue).get_job_ids():
        if job_id == keep:
            continue
        job = queue.fetch_job(job_id)
        if job is None or job.worker_name != worker_name:
            continue
        started = job.started_at and (datetime.now(UTC) - _utc(job.started_at)).total_seconds()
        if older_than and (started is None or started < older_than):
            continue
        func, args, kwargs = job.func_name, job.args, job.kwargs
        timeout, result_ttl, failure_ttl = job.timeout, job.result_ttl, job.failure_ttl
        job.delete()
        if func == DECIDE:
            decision(queue, args[0], "resume", retry_delays)
        else:
            queue.enqueue(func, *args, **kwargs, job_id=job_id, job_timeout=timeout,
                          result_ttl=result_ttl, failure_ttl=failure_ttl)
        orphans.append(job_id)
    return orphans


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
