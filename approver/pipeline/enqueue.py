"""Putting work on the queue: job ids that make duplicate deliveries collapse into one job."""

from __future__ import annotations

import re
import time
import zlib
from datetime import UTC, datetime

from redis.commands.core import Script
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.scripts import _build_hset_args
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from approver.state import PREFIX, lock_key, state_key

# The jobs' dotted paths, kept in approver/jobs.py: queued jobs and older workers name them.
DECIDE = "approver.jobs.decide_request"
RECONCILE = "approver.jobs.reconcile_pass"
JOB_TIMEOUT = 90
# RQ job ids allow letters, digits, "_" and "-" only; Tyk's ids are 24-hex ObjectIds.
# \Z, not $: `$` also matches before a trailing "\n", which RQ then refuses.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


def decide_job_id(request_id: str) -> str:
    """The job id for deciding one key request."""
    return f"kr-{request_id}"


# RQ 3.0's UNIQUE_ENQUEUE_SCRIPT (rq/scripts.py: exists? else HSET the job, EXPIRE, push
# the id) with the SADD of the queue to `rq:queues` that `Queue.enqueue_job` sends in a
# pipeline of its own beforehand (and sends for a duplicate too): one round trip, not two.
# HASH: the job hash's fields and values, most of them written into the script (_template).
_UNIQUE_ENQUEUE = """
redis.call("SADD", KEYS[3], KEYS[2])
if redis.call("EXISTS", KEYS[1]) == 1 then
    return 0
end
redis.call("HSET", KEYS[1], HASH)
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
    redis.call("EXPIRE", KEYS[1], ttl)
end
if ARGV[2] == "L" then
    redis.call("LPUSH", KEYS[2], ARGV[1])
elseif ARGV[2] == "R" then
    redis.call("RPUSH", KEYS[2], ARGV[1])
end
return 1
"""
# The fields of a decision's job hash that differ from one request to the next; the rest
# is the same for every decision job of one queue and retry setting.
_PER_JOB = ("created_at", "data", "description", "enqueued_at")
_templates: dict = {}


def _options(request_id: str, trigger: str, retry_delays) -> dict:
    """RQ's options for the decision job of one request."""
    return dict(
        job_id=decide_job_id(request_id),
        retry=Retry(max=len(retry_delays), interval=list(retry_delays))
        if retry_delays else None,
        # No result kept: the request's state in Redis is the result, and a finished
        # job must not block the next trigger (a billing change, a deadline).
        timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=30 * 86400,
        description=f"decide key request {request_id} ({trigger})",
    )


def _lua_text(value: bytes) -> str:
    """`value` as a Lua string literal: printable ASCII as it is, but for `"` and `\\`, every
    other byte as a three-digit decimal escape (so any bytes will do)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}"
                         for b in value) + '"'


def _template(queue: Queue, retry_delays) -> tuple[Script, tuple[str, ...], int]:
    """The unique-enqueue script for decision jobs on `queue`, with the job hash RQ writes in
    it, but for the per-job values it takes as ARGV[4…] (their names, in that order), and
    the job's TTL (-1: none).

    The hash is built by RQ itself, for a placeholder request, once per queue and retry
    setting (`Queue.create_job` → `_prepare_for_queue` → `Job.to_dict`, as `enqueue_call`
    does), each value encoded as redis-py would send it.
    """
    encoder = queue.connection.get_encoder()
    key = (queue.name, queue.serializer, tuple(retry_delays or ()), encoder.encoding,
           encoder.encoding_errors)
    found = _templates.get(key)
    if found is None:
        job = queue.create_job(DECIDE, args=("", ""), status=JobStatus.QUEUED,
                               **_options("", "", retry_delays))
        if job._dependency_ids or job.has_rate_limit:  # not ours to do here: RQ refuses them
            raise ValueError("unique=True is not supported with dependencies or rate limits")
        job.origin = queue.name
        queue._prepare_for_queue(job)  # server version (cached), origin, enqueued_at, status
        fields = _build_hset_args(job)
        per_job = tuple(name for name in fields[::2] if name in _PER_JOB)
        hset = []
        for name, value in zip(fields[::2], fields[1::2], strict=True):
            hset.append(_lua_text(encoder.encode(name)))
            hset.append(f"ARGV[{4 + per_job.index(name)}]" if name in per_job
                        else _lua_text(encoder.encode(value)))
        script = queue.connection.register_script(
            _UNIQUE_ENQUEUE.replace("HASH", ", ".join(hset)))
        found = _templates[key] = (script, per_job, job.ttl if job.ttl is not None else -1)
    return found


def _enqueue_unique(queue: Queue, request_id: str, trigger: str, retry_delays) -> None:
    """`queue.enqueue_call(DECIDE, …, unique=True, **_options(…))` in one Redis round trip.

    Writes the job hash RQ would write for it (RQ's, built once, with this request's id,
    function data, description and times; tests/test_webhook.py compares the two), with
    RQ's atomic unique-save and the queue registration folded in. RQ builds and flattens
    a job in ~100 µs of a ~1 ms webhook under gunicorn, and redis-py packs its 41
    arguments in ~18 µs; the template takes ~20 µs, its 11 arguments ~6 µs.
    DuplicateJobError as RQ.
    """
    script, per_job, ttl = _template(queue, retry_delays)
    values = {
        "created_at": utcformat(now()),
        "data": zlib.compress(queue.serializer.dumps((DECIDE, None, (request_id, trigger), {}))),
        "description": f"decide key request {request_id} ({trigger})",
        "enqueued_at": utcformat(now()),
    }
    job_id = decide_job_id(request_id)
    # EVALSHA on this queue's connection (SCRIPT LOAD first only if Redis lacks it).
    done = script(keys=[Job.key_for(job_id), queue.key, queue.redis_queues_keys],
                  args=[job_id, "R", ttl, *(values[name] for name in per_job)],
                  client=queue.connection)
    if done == 0:
        raise DuplicateJobError(f"Job with ID '{job_id}' already exists")


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
        if pipeline is None and queue._is_async:
            _enqueue_unique(queue, request_id, trigger, retry_delays)
        else:
            queue.enqueue_call(DECIDE, (request_id, trigger), unique=True, pipeline=pipeline,
                               **_options(request_id, trigger, retry_delays))
    except DuplicateJobError:
        if reclaim and _reclaim(queue, decide_job_id(request_id), request_id, retry_delays):
            return decision(queue, request_id, trigger, retry_delays, pipeline)
        return False
    return True


def job_statuses(queue: Queue, request_ids: list[str]) -> list[bytes | None]:
    """The status of each request's decision job (None if there is none), one round trip."""
    pipe = queue.connection.pipeline(transaction=False)
    for request_id in request_ids:
        pipe.hget(Job.key_for(decide_job_id(request_id)), "status")
    return pipe.execute()


# Seconds a started job may go without its request's lock held, or a queued one out of
# its queue, before it counts as abandoned.
ABANDONED_AFTER = 10


def _reclaim(queue: Queue, job_id: str, request_id: str, retry_delays) -> bool:
    """Remove a job that blocks its id but will never run again; True if removed."""
    job = queue.fetch_job(job_id)
    if job is None:
        return True  # gone meanwhile: just try again
    status = job.get_status(refresh=False)
    now = datetime.now(UTC)
    if status == JobStatus.FAILED:
        # Left in the failed registry for a while, visible to `decisions list --failed`,
        # then tried again by the reconciler, unless no retry can help (Tyk refused the
        # request as sent): that one waits for a human (`approver replay`).
        pause = max(retry_delays or (0,), default=0)
        hopeless = queue.connection.hget(state_key(request_id), "error_permanent")
        stale = hopeless != b"True" and (
            job.ended_at is None or (now - as_utc(job.ended_at)).total_seconds() >= pause)
    elif status == JobStatus.STARTED:
        # A running decision always holds its request's lock (renewed while it runs): a
        # started job without it, for a while, belongs to a worker that died.
        locked = queue.connection.exists(lock_key(request_id))
        started = job.started_at and (now - as_utc(job.started_at)).total_seconds()
        stale = not locked and (started is None or started >= ABANDONED_AFTER)
    elif status == JobStatus.QUEUED:
        # A worker pops a job's id off the queue, then reads the job: when the pop's answer
        # is lost (Redis stopping), the job stays "queued" in no queue, and nobody runs it.
        queued = job.enqueued_at and (now - as_utc(job.enqueued_at)).total_seconds()
        stale = (queued is None or queued >= ABANDONED_AFTER) and (
            queue.connection.lpos(queue.key, job_id) is None)
    else:
        stale = status in (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED)
    if stale:
        job.delete()
    return stale


def as_utc(moment: datetime) -> datetime:
    """`moment` with UTC as its zone if it has none (RQ keeps naive UTC times)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


RECONCILE_DUE = PREFIX + "reconcile:due"


def reconcile(queue: Queue, interval: int) -> bool:
    """Queue a reconciler pass unless one was queued in the last `interval` seconds.

    Every worker asks every second; a key that lives `interval` seconds lets one through.
    Nothing else is kept in Redis: when Redis comes back empty, the next ask queues a pass.
    """
    if not queue.connection.set(RECONCILE_DUE, "1", nx=True, ex=interval):
        return False
    queue.enqueue(RECONCILE, job_id=f"reconcile-{time.time_ns()}",
                  job_timeout=max(JOB_TIMEOUT, interval), result_ttl=0,
                  failure_ttl=86400, description="periodic reconciler pass")
    return True


# Notifications and emails have a queue of their own beside the decision queue: a worker
# takes from it only when no decision waits.
QUEUE_SUFFIX = "-notify"


def notify_queue(queue_or_connection, queue_name: str = "approver") -> Queue:
    """The notification queue beside the decision queue (a Queue, or a connection + name)."""
    if isinstance(queue_or_connection, Queue):
        connection, queue_name = queue_or_connection.connection, queue_or_connection.name
    else:
        connection = queue_or_connection
    if queue_name.endswith(QUEUE_SUFFIX):
        return Queue(queue_name, connection=connection, serializer=JSONSerializer)
    return Queue(queue_name + QUEUE_SUFFIX, connection=connection, serializer=JSONSerializer)
