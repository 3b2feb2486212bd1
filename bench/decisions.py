"""Decisions: applied decisions per second of one worker process vs RQ's own no-op job rate.

Method, the same for both: fill the queue first (no worker running), then start one
SimpleWorker in burst mode and take the steady completion rate,
(jobs - 1) / (last completion - first completion). Worker start-up, the first job and the
enqueueing are outside the window; RQ's per-job bookkeeping is inside it in both cases.
A decision completes at its `applied_at` (Redis state, ms resolution, written once the
Dashboard answered); a no-op job at RQ's `ended_at` (its job record; the no-op jobs keep
their result for 300 s, RQ's bookkeeping as the service had it when this harness was
written, so the baseline stays fixed while the service's own enqueue options are tuned).

- decisions: `approver worker --burst` (SimpleWorker, JSON serializer, scheduler on), jobs
  queued by `approver.pipeline.enqueue.decision` as the webhook does, against the sandbox Dashboard:
  half the requests are approved (rule `partners`), half denied (`deny-disposable-email`),
  every one applied in the Dashboard.
- no-op: `rq worker -w rq.worker.SimpleWorker -S JSONSerializer --with-scheduler --burst`
  on its own queue, jobs queued with the same options but calling bench.noop.noop.
"""

from __future__ import annotations

import collections
import time
from datetime import datetime

from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from approver.pipeline import enqueue, runtime
from approver.state import APPLIED, PREFIX, Store, connection
from bench import data
from bench.procs import Procs, Sandbox, tail
from bench.rss import CpuSampler, PeakTracker

QUEUE = "approver"
NOOP_QUEUE = "bench-noop"
RETRY_DELAYS = (1, 5, 15, 60, 300)  # the service's default APPROVER_RETRY_DELAYS


def _commands(conn) -> collections.Counter:
    """Redis commands served so far by command (INFO commandstats), INFO itself excluded."""
    stats = conn.info("commandstats")
    return collections.Counter({k.removeprefix("cmdstat_"): v["calls"]
                                for k, v in stats.items() if k != "cmdstat_info"})


def _per_job(before: collections.Counter, after: collections.Counter, n: int) -> dict:
    """Redis commands per job: in all, and by command (most first)."""
    spent = after - before
    return {"redis_commands": sum(spent.values()) / n,
            "redis_by_command": {k: v / n for k, v in spent.most_common()}}


def _rate(ends: list[float]) -> float | None:
    """Completions per second between the first and the last completion."""
    if len(ends) < 2 or max(ends) <= min(ends):
        return None
    return (len(ends) - 1) / (max(ends) - min(ends))


def _noop_ends(conn, job_ids: list[str]) -> list[float]:
    jobs = [j for j in Job.fetch_many(job_ids, connection=conn, serializer=JSONSerializer) if j]
    return [j.ended_at.timestamp() for j in jobs
            if j.ended_at and j.get_status() == JobStatus.FINISHED]


def _applied_ends(conn, request_ids: list[str]) -> list[float]:
    pipe = conn.pipeline(transaction=False)
    for request_id in request_ids:
        pipe.hget(f"{PREFIX}request:{request_id}", "applied_at")
    return [datetime.fromisoformat(v.decode().replace("Z", "+00:00")).timestamp()
            for v in pipe.execute() if v]


def _run_burst(procs: Procs, proc, timeout: float, peaks: PeakTracker,
               others: dict[str, int]) -> CpuSampler:
    """Wait for a burst worker to finish, sampling its peak RSS and everyone's CPU time."""
    cpu = CpuSampler({"worker": proc.pid, **others})
    deadline = time.monotonic() + timeout
    while True:
        # /proc/<pid> is read before poll() reaps the process.
        peaks.sample(proc.pid)
        cpu.sample()
        if not proc.alive():
            break
        if time.monotonic() > deadline:
            procs.stop(proc)
            raise TimeoutError(f"{proc.name} did not finish in {timeout:.0f}s:\n{tail(proc.log)}")
        time.sleep(0.02)
    procs.stop(proc)
    return cpu


def _cpu_per_job(cpu: CpuSampler, ends: list[float]) -> dict:
    """CPU ms per job of each sampled process, between the first completion and the last
    completion the worker's samples cover; and the worker's busy share of that time."""
    ends = sorted(ends)
    worker = cpu.samples["worker"]
    if len(ends) < 2 or not worker:
        return {}
    start, stop = ends[0], min(ends[-1], worker[-1][0])
    jobs = sum(1 for t in ends if start < t <= stop)
    if jobs < 1 or stop <= start:
        return {}
    out = {}
    for name in cpu.pids:
        used = cpu.between(name, start, stop)
        out[f"cpu_ms_{name}"] = None if used is None else used * 1000 / jobs
    used = cpu.between("worker", start, stop)
    out["worker_busy"] = None if used is None else used / (stop - start)
    return out


def decisions_run(procs: Procs, sandbox: Sandbox, env: dict, n: int,
                  peaks: PeakTracker) -> dict:
    """One worker deciding n queued key requests; decisions/s and Dashboard calls each."""
    assert procs.redis is not None
    conn = connection.connect(procs.redis.url)
    conn.flushdb()
    sandbox.reset()
    ids = sandbox.create_requests(data.specs(n))
    queue = runtime.queue(conn, QUEUE)
    for request_id in ids:
        enqueue.decision(queue, request_id, "bench", RETRY_DELAYS)
    commands = _commands(conn)
    proc = procs.start_worker(env, burst=True)
    cpu = _run_burst(procs, proc, timeout=60 + n / 10, peaks=peaks,
                     others={"sandbox": sandbox.pid, "redis": procs.redis.process.pid})
    commands = _per_job(commands, _commands(conn), n)
    ends = _applied_ends(conn, ids)
    states = Store(conn).states(ids)
    applied = sum(1 for s in states if s == APPLIED)
    calls = len(sandbox.calls("", "/api/"))
    conn.close()
    if applied != n:
        raise RuntimeError(f"only {applied} of {n} decisions applied:\n{tail(proc.log)}")
    return {"rate": _rate(ends), "jobs": len(ends), "seconds": max(ends) - min(ends),
            "calls_per_decision": calls / n, **commands,
            "worker_pid": proc.pid, **_cpu_per_job(cpu, ends)}


def noop_run(procs: Procs, n: int, peaks: PeakTracker) -> dict:
    """RQ's CLI SimpleWorker running n queued no-op jobs; jobs/s."""
    assert procs.redis is not None
    conn = connection.connect(procs.redis.url)
    conn.flushdb()
    queue = Queue(NOOP_QUEUE, connection=conn, serializer=JSONSerializer)
    job_ids = []
    for i in range(n):
        job_id = f"noop-{i}"
        # The options enqueue.decision uses, so RQ's bookkeeping per job is the same.
        queue.enqueue(
            "bench.noop.noop", f"{i:024x}", "bench", job_id=job_id, unique=True,
            retry=Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS)),
            job_timeout=enqueue.JOB_TIMEOUT, result_ttl=300, failure_ttl=30 * 86400,
            description=f"no-op {i}",
        )
        job_ids.append(job_id)
    commands = _commands(conn)
    proc = procs.start_noop_worker(procs.redis.url, NOOP_QUEUE, burst=True)
    cpu = _run_burst(procs, proc, timeout=60 + n / 50, peaks=peaks,
                     others={"redis": procs.redis.process.pid})
    commands = _per_job(commands, _commands(conn), n)
    ends = _noop_ends(conn, job_ids)
    conn.close()
    if len(ends) != n:
        raise RuntimeError(f"only {len(ends)} of {n} no-op jobs finished:\n{tail(proc.log)}")
    return {"rate": _rate(ends), "jobs": len(ends), "seconds": max(ends) - min(ends),
            **commands, "worker_pid": proc.pid, **_cpu_per_job(cpu, ends)}
