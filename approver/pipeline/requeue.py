"""Jobs left behind, put back on their queue: those a lost answer left "queued" in no queue,
and those a worker of ours was running when it lost Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.utils import utcparse

from approver.pipeline import enqueue


def requeue_stranded(queues: list[Queue], older_than: float | None = None,
                     pause: float = 1.0) -> list[str]:
    """Push back onto its queue every job left "queued" in no queue; their ids.

    A worker on more than one queue pops a job's id (BLPOP), then reads the job: when the
    pop's answer is lost (Redis stopping), the job stays "queued" in no queue and nobody
    runs it. Decision jobs are reclaimed per request by the reconciler; this finds the
    rest (billing events, notifications, emails, billing checks). Meant for idle queues:
    a job a live worker has just popped is marked started within moments, so one still
    "queued", and in no queue, after `pause` seconds is stranded.
    """
    if not queues:
        return []
    older_than = enqueue.ABANDONED_AFTER if older_than is None else older_than
    connection = queues[0].connection
    keys = {q.name: q.key for q in queues}
    candidates = _stranded(connection, keys, older_than)
    if not candidates:
        return []
    time.sleep(pause)  # a second look: what a live worker popped is started by now
    again = set(_stranded(connection, keys, older_than, only=[i for i, _ in candidates]))
    requeued = []
    for job_id, origin in candidates:
        if (job_id, origin) in again:
            connection.rpush(keys[origin], job_id)
            requeued.append(job_id)
    return requeued


def _stranded(connection, keys: dict[str, str], older_than: float,
              only: list[str] | None = None) -> list[tuple[str, str]]:
    """(job id, queue name) of the jobs "queued" on these queues, in none of them, and
    queued more than `older_than` seconds ago (decision jobs aside)."""
    if only is None:
        ids = [k.decode()[len(Job.redis_job_namespace_prefix):]
               for k in connection.scan_iter(match=Job.redis_job_namespace_prefix + "*",
                                             count=1000)]
        ids = [i for i in ids if ":" not in i and not i.startswith("kr-")]
    else:
        ids = only
    pipe = connection.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(Job.key_for(job_id), "status", "origin", "enqueued_at")
    now = datetime.now(UTC)
    found = []
    for job_id, (status, origin, enqueued) in zip(ids, pipe.execute(), strict=True):
        if status != b"queued" or origin is None or origin.decode() not in keys:
            continue
        try:
            age = (now - enqueue.as_utc(utcparse(enqueued.decode()))).total_seconds()
        except (AttributeError, ValueError):
            age = older_than  # no time kept: old enough
        if age >= older_than and connection.lpos(keys[origin.decode()], job_id) is None:
            found.append((job_id, origin.decode()))
    return found


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
        started = job.started_at and (
            datetime.now(UTC) - enqueue.as_utc(job.started_at)).total_seconds()
        if older_than and (started is None or started < older_than):
            continue
        func, args, kwargs = job.func_name, job.args, job.kwargs
        timeout, result_ttl, failure_ttl = job.timeout, job.result_ttl, job.failure_ttl
        job.delete()
        if func == enqueue.DECIDE:
            enqueue.decision(queue, args[0], "resume", retry_delays)
        else:
            queue.enqueue(func, *args, **kwargs, job_id=job_id, job_timeout=timeout,
                          result_ttl=result_ttl, failure_ttl=failure_ttl)
        orphans.append(job_id)
    return orphans
