"""The worker process: an RQ SimpleWorker that outlives Redis outages and dead peers."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.serializers import JSONSerializer
from rq.utils import utcparse

from approver.pipeline import enqueue, health, requeue, runtime
from approver.state import PREFIX, connection

log = logging.getLogger(__name__)

WORKER_TTL = 60
MAINTENANCE_INTERVAL = 30
TICK = 1.0  # seconds between the watchdog's rounds
# A worker of ours is alive while its key is: the watchdog sets it every TICK, whatever
# the worker is doing (a SimpleWorker sends RQ no heartbeat while it runs a job).
ALIVE_TTL = 10
WORKERS_KEY = PREFIX + "workers"
# RQ's scheduler refreshes its heartbeat every second: one silent this long is dead, and
# its lock (held 61 s after its last refresh) is taken over.
SCHEDULER_SILENT = 15
HEARTBEAT_EVERY = 1.0  # seconds: RQ's worker heartbeat and state, at most this often


class Worker(SimpleWorker):
    """RQ's SimpleWorker with its command channel (the `rq` CLI's shutdown and kill) polled
    every second, not every 60: stopping a worker waits for that poll to end (redis-py
    joins the thread), so a SIGTERM or the end of a burst could take a minute.

    It also sends RQ's worker heartbeat (HSET and two EXPIREs) at most once every
    HEARTBEAT_EVERY, not five times a job, and its state only when it changes or a beat is
    due: 16 of RQ's ~57 commands a job. The worker's key never expires sooner than RQ
    would have it (each beat skipped was covered by the last one sent, within a second),
    and no liveness of ours rests on it: that is the watchdog's alive key.
    """

    _beat_sent = _beat_until = _state_sent = float("-inf")

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        timeout = timeout or self.worker_ttl + 60
        now = time.monotonic()
        if now - self._beat_sent < HEARTBEAT_EVERY and \
                self._beat_until >= now + timeout - HEARTBEAT_EVERY:
            return
        super().heartbeat(timeout, pipeline=pipeline)
        self._beat_sent, self._beat_until = now, now + timeout

    def set_state(self, state: str, pipeline=None) -> None:
        now = time.monotonic()
        if state == self._state and now - self._state_sent < HEARTBEAT_EVERY:
            return
        super().set_state(state, pipeline=pipeline)
        self._state_sent = now


def alive_key(name: str) -> str:
    """The key that says the worker `name` is alive."""
    return f"{PREFIX}alive:{name}"


def run(rt: runtime.Runtime, name: str | None = None, burst: bool = False,
        log_level: str = "INFO") -> int:
    """Work until asked to stop (SIGTERM/SIGINT), starting again after a Redis outage."""
    stop = threading.Event()
    current: list[SimpleWorker] = []
    threading.Thread(target=_watchdog, args=(rt, current, stop, burst), daemon=True,
                     name="approver-watchdog").start()

    def stop_between_runs(signum, frame):
        stop.set()

    backoff, restarts = 1.0, 0
    previous: list[str] = []  # names of this process's workers that lost Redis
    try:
        while not stop.is_set():
            worker = None
            # A worker that lost Redis mid-job may still be registered under its name: a
            # restarted one takes a name of its own.
            worker_name = f"{name}-{restarts}" if name and restarts else name
            restarts += 1
            started = time.monotonic()
            try:
                for old in list(previous):
                    _requeue_orphans(rt, old)
                    previous.remove(old)
                health.publish_health(rt)
                # SimpleWorker runs jobs in its own process: the default forking Worker pays
                # ~45 ms a job re-importing the job module in a fresh child, 10x our whole
                # decision. A crash mid-job corrupts nothing (state is in Redis, written
                # before each Dashboard call) and RQ still enforces job_timeout (SIGALRM).
                # Decisions first: a worker takes a notification only when none waits.
                worker = Worker(
                    [rt.queue, enqueue.notify_queue(rt.queue)], connection=rt.redis,
                    serializer=JSONSerializer, name=worker_name, worker_ttl=WORKER_TTL,
                    maintenance_interval=MAINTENANCE_INTERVAL,
                )
                _beat(rt, worker.name)  # alive before it takes a job
                current[:] = [worker]
                worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
            except RedisError as exc:
                if worker is not None:
                    previous.append(worker.name)
                log.warning("Redis unavailable (%s): the worker starts again in %.0fs",
                            connection.describe_redis_error(exc), backoff)
            else:
                # RQ records when SIGTERM/SIGINT asked it to stop. Without that, the loop
                # ended because Redis went away under a job: start again rather than exit.
                if burst or getattr(worker, "_shutdown_requested_date", True):
                    _goodbye(rt, worker.name)
                    return 0
                previous.append(worker.name)
                log.warning("the worker stopped unexpectedly: it starts again in %.0fs",
                            backoff)
            if worker is not None and getattr(worker, "_shutdown_requested_date", None):
                return 0
            signal.signal(signal.SIGTERM, stop_between_runs)
            signal.signal(signal.SIGINT, stop_between_runs)
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran well for a while: this is a new outage
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
        return 0
    finally:
        stop.set()


def _requeue_orphans(rt: runtime.Runtime, worker_name: str) -> None:
    for queue in (rt.queue, enqueue.notify_queue(rt.queue)):
        requeued = requeue.requeue_orphans(queue, worker_name, rt.settings.retry_delays)
        if requeued:
            log.warning("queued again what the worker was running when it lost Redis: %s",
                        ", ".join(requeued))
    rt.redis.srem(WORKERS_KEY, worker_name)  # done: nobody need take it over


def _beat(rt: runtime.Runtime, name: str) -> None:
    pipe = rt.redis.pipeline(transaction=False)
    pipe.set(alive_key(name), "1", ex=ALIVE_TTL)
    pipe.sadd(WORKERS_KEY, name)
    pipe.execute()


def _goodbye(rt: runtime.Runtime, name: str) -> None:
    """A worker that stops cleanly is not taken for dead."""
    try:
        pipe = rt.redis.pipeline(transaction=False)
        pipe.delete(alive_key(name))
        pipe.srem(WORKERS_KEY, name)
        pipe.execute()
    except RedisError:
        pass  # its key lapses; it ran nothing, so nothing is queued again


def _watchdog(rt: runtime.Runtime, current: list[SimpleWorker], stop: threading.Event,
              burst: bool) -> None:
    """Every TICK: say this worker is alive, queue the periodic reconciler pass when due,
    and take over from workers of ours that died; RQ's maintenance on time.

    RQ runs its maintenance only between jobs, and finds a dead SimpleWorker's job only
    once its heartbeat (the job timeout + 60 s) expires; its scheduler lock outlives a dead
    holder by a minute. The reconciler pass is queued here, not as a chain of scheduled
    jobs, so it comes back by itself when Redis restarts empty.
    """
    last_maintenance = time.monotonic()
    while not stop.wait(TICK):
        worker = current[0] if current else None
        if worker is None:
            continue
        try:
            _beat(rt, worker.name)
            if not burst:
                enqueue.reconcile(rt.queue, rt.settings.reconcile_interval)
            _requeue_dead_workers_jobs(rt, worker)
            _take_over_a_dead_scheduler(rt, worker)
            if time.monotonic() - last_maintenance >= MAINTENANCE_INTERVAL / 3:
                last_maintenance = time.monotonic()
                _requeue_own_orphans(worker)
                if worker.should_run_maintenance_tasks:
                    worker.run_maintenance_tasks()
        except RedisError:
            pass  # the main loop handles outages
        except Exception:
            log.exception("the worker's watchdog failed")


def _requeue_dead_workers_jobs(rt: runtime.Runtime, worker: SimpleWorker) -> None:
    """Queue again the jobs of workers of ours whose alive key lapsed while Redis was up."""
    names = {m.decode() for m in rt.redis.smembers(WORKERS_KEY)} - {worker.name}
    if not names:
        return
    pipe = rt.redis.pipeline(transaction=False)
    for name in sorted(names):
        pipe.exists(alive_key(name))
    dead = [n for n, alive in zip(sorted(names), pipe.execute(), strict=True) if not alive]
    # Keys lapse while Redis is down too: right after a restart, nobody had time to beat.
    if not dead or rt.redis.info("server")["uptime_in_seconds"] < ALIVE_TTL * 1.5:
        return
    for name in dead:
        if not rt.redis.srem(WORKERS_KEY, name):
            continue  # another worker took this one over
        requeued = [job_id for queue in worker.queues
                    for job_id in requeue.requeue_orphans(queue, name,
                                                          rt.settings.retry_delays)]
        log.warning("worker %s is dead%s", name,
                    f": queued again what it was running: {', '.join(requeued)}"
                    if requeued else "")


def _take_over_a_dead_scheduler(rt: runtime.Runtime, worker: SimpleWorker) -> None:
    """Free the scheduler lock of a dead RQ scheduler and start this worker's own."""
    if worker.scheduler is None or worker.scheduler.acquired_locks:
        return
    freed = False
    for queue in worker.queues:
        key = RQScheduler.get_locking_key(queue.name)
        holder = rt.redis.get(key)
        if holder is None:
            continue
        beat = rt.redis.hget(f"rq:scheduler:{holder.decode()}", "last_heartbeat")
        silent = (datetime.now(UTC) - utcparse(beat.decode()).replace(tzinfo=UTC)
                  ).total_seconds() if beat else SCHEDULER_SILENT
        if silent >= SCHEDULER_SILENT and release_lock(rt.redis, key, holder.decode()):
            log.warning("the scheduler of %s was silent for %.0fs: taking over",
                        queue.name, silent)
            freed = True
    if freed:
        worker.scheduler.acquire_locks(auto_start=True)


ORPHAN_AFTER = 5  # seconds


def _requeue_own_orphans(worker: SimpleWorker) -> None:
    """Queue again jobs registered as running here that this worker is not running.

    When Redis fails under a job, RQ may carry on with its loop and leave that job marked
    started, with nobody to finish it until its heartbeat expires minutes later.
    """
    current = worker.get_current_job_id()
    for queue in worker.queues:
        requeue.requeue_orphans(queue, worker.name, keep=current, older_than=ORPHAN_AFTER)
