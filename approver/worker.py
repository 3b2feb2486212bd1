"""The worker process: an RQ SimpleWorker that outlives Redis outages and dead peers."""

from __future__ import annotations

import logging
import signal
import threading

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from approver import enqueue, notify, runtime

log = logging.getLogger(__name__)

WORKER_TTL = 60
MAINTENANCE_INTERVAL = 30


def run(rt: runtime.Runtime, name: str | None = None, burst: bool = False,
        log_level: str = "INFO") -> int:
    """Work until asked to stop (SIGTERM/SIGINT), starting again after a Redis outage."""
    stop = threading.Event()
    current: list[SimpleWorker] = []
    threading.Thread(target=_watchdog, args=(current, stop), daemon=True,
                     name="rq-maintenance").start()

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
            try:
                for old in list(previous):
                    _requeue_orphans(rt, old)
                    previous.remove(old)
                runtime.publish_health(rt)
                enqueue.reconcile(rt.queue, rt.settings.reconcile_interval)
                # SimpleWorker runs jobs in its own process: the default forking Worker pays
                # ~45 ms a job re-importing the job module in a fresh child, 10x our whole
                # decision. A crash mid-job corrupts nothing (state is in Redis, written
                # before each Dashboard call) and RQ still enforces job_timeout (SIGALRM).
                # Decisions first: a worker takes a notification only when none waits.
                worker = SimpleWorker(
                    [rt.queue, notify.notify_queue(rt.queue)], connection=rt.redis,
                    serializer=JSONSerializer, name=worker_name, worker_ttl=WORKER_TTL,
                    maintenance_interval=MAINTENANCE_INTERVAL,
                )
                current[:] = [worker]
                worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
            except RedisError as exc:
                if worker is not None:
                    previous.append(worker.name)
                log.warning("Redis unavailable (%s): the worker starts again in %.0fs",
                            runtime.describe_redis_error(exc), backoff)
            else:
                # RQ records when SIGTERM/SIGINT asked it to stop. Without that, the loop
                # ended because Redis went away under a job: start again rather than exit.
                if burst or getattr(worker, "_shutdown_requested_date", True):
                    return 0
                previous.append(worker.name)
                log.warning("the worker stopped unexpectedly: it starts again in %.0fs",
                            backoff)
            if worker is not None and getattr(worker, "_shutdown_requested_date", None):
                return 0
            signal.signal(signal.SIGTERM, stop_between_runs)
            signal.signal(signal.SIGINT, stop_between_runs)
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
        return 0
    finally:
        stop.set()


def _requeue_orphans(rt: runtime.Runtime, worker_name: str) -> None:
    for queue in (rt.queue, notify.notify_queue(rt.queue)):
        requeued = enqueue.requeue_orphans(queue, worker_name, rt.settings.retry_delays)
        if requeued:
            log.warning("queued again what the worker was running when it lost Redis: %s",
                        ", ".join(requeued))


def _watchdog(current: list[SimpleWorker], stop: threading.Event) -> None:
    """Run RQ's maintenance on time even while the worker idles.

    RQ runs it only between jobs, so an idle worker would never take over the scheduler
    of a worker that died (retries and the reconciler's timer stop) nor clean up the
    jobs it abandoned.
    """
    while not stop.wait(MAINTENANCE_INTERVAL / 3):
        worker = current[0] if current else None
        if worker is None:
            continue
        try:
            _requeue_own_orphans(worker)
            if worker.should_run_maintenance_tasks:
                worker.run_maintenance_tasks()
        except RedisError:
            pass  # the main loop handles outages
        except Exception:
            log.exception("RQ maintenance failed")


ORPHAN_AFTER = 5  # seconds


def _requeue_own_orphans(worker: SimpleWorker) -> None:
    """Queue again jobs registered as running here that this worker is not running.

    When Redis fails under a job, RQ may carry on with its loop and leave that job marked
    started, with nobody to finish it until its heartbeat expires minutes later.
    """
    current = worker.get_current_job_id()
    for queue in worker.queues:
        enqueue.requeue_orphans(queue, worker.name, keep=current, older_than=ORPHAN_AFTER)
