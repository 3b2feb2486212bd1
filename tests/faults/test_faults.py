"""Fault injection on real processes: Redis restarts, SIGKILLed workers, a failing Dashboard,
duplicate and lost webhooks, and the reconciler racing the webhooks.

Each scenario ends with the same checks (`assert_applied_once`): every request decided as its
developer's rule says, each approve or delete done exactly once in the Dashboard (successful
calls per id in the sandbox's call log), the Dashboard's own state agreeing, and no lock left.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from approver import state as st
from tests.faults.conftest import (
    ALICE,
    APPROVE,
    BOB,
    REQUESTS,
    ROOT,
    assert_applied_once,
    developer_map,
    developers,
    run_threads,
    wait_until,
)

pytestmark = pytest.mark.faults


def decided_entries(stack, ids) -> Counter:
    """How many "decided" log entries each request has."""
    wanted = set(ids)
    return Counter(e["request_id"] for e in stack.store.entries(10_000)
                   if e["event"] == "decided" and e["request_id"] in wanted)


class WorkerDied(Exception):
    """The known bug of test_redis_restart_during_a_burst_of_webhooks."""


RECOVERY_BOUND = 30  # seconds from new workers up, after a SIGKILL of every worker


class StuckAfterKill(Exception):
    """The known bug of test_sigkill_of_workers_mid_apply."""


class NeverRetried(Exception):
    """The known bug of test_reconciler_resumes_a_request_whose_job_used_up_its_retries."""


def test_redis_restart_during_a_burst_of_webhooks(stack):
    stack.set_webhook(None)  # this test is the sender, so that it can retry 503s
    emails = developers(14, 13, 13)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    # Slow Dashboard reads keep both workers inside jobs when Redis goes away.
    stack.fault("GET", "/api/portal/policies/", hang=0.4, times=40)
    outage: dict[str, float] = {}

    def send(request):
        time.sleep(random.uniform(0, 3.0))  # spread the 40 deliveries over ~3 s
        return stack.post_webhook(request)

    def break_redis():
        time.sleep(0.8)
        outage["down"] = time.monotonic()
        stack.stop_redis()
        time.sleep(2.0)
        stack.start_redis()
        outage["up"] = time.monotonic()

    breaker = threading.Thread(target=break_redis, daemon=True)
    breaker.start()
    seen = run_threads(send, created, 10)
    breaker.join(30)
    assert "up" in outage, "Redis did not come back"

    statuses = Counter(status for attempts in seen for status, _ in attempts)
    slowest = max(seconds for attempts in seen for _, seconds in attempts)
    print(f"webhook answers {dict(statuses)}, slowest {slowest:.3f}s, "
          f"Redis down {outage['up'] - outage['down']:.2f}s")
    assert set(statuses) <= {202, 503}, statuses  # never another 5xx, never a timeout
    assert statuses[503] > 0, "the outage was not hit: the test proves nothing"
    assert all(attempts[-1][0] == 202 for attempts in seen)
    assert slowest < 2.0

    try:
        took = stack.wait_final(ids, 20)
    except AssertionError as exc:
        dead = [(w.name, w.popen.returncode) for w in stack.workers if not w.alive()]
        jobs = {i: stack.redis.hmget(f"rq:job:kr-{i}", "status", "started_at", "worker_name")
                for i in ids if (stack.store.state(i) or {}).get("state") is None}
        raise WorkerDied(f"{exc}; dead workers (name, exit status): {dead}; "
                         f"rq jobs of the undecided: {jobs}") from None
    print(f"all final {took:.1f}s after the burst")
    dead = [(w.name, w.popen.returncode) for w in stack.workers if not w.alive()]
    if dead:
        raise WorkerDied(f"workers exited in the Redis outage: {dead}")
    assert_applied_once(stack, created, developer_map(created, emails))
    assert set(decided_entries(stack, ids).values()) == {1}


def test_sigkill_of_workers_mid_apply(stack):
    emails = developers(4, 2, 0)
    # Every first approve/delete hangs past the client's 1 s read timeout (the Dashboard
    # still carries it out after 3 s): both workers are inside a Dashboard call.
    stack.fault("PUT", APPROVE, hang=3, times=4)
    stack.fault("DELETE", REQUESTS, hang=3, times=2)
    created = stack.create(emails)  # the sandbox posts the webhooks
    ids = [r["id"] for r in created]

    def two_applying():
        applying = [i for i, s in zip(ids, stack.store.states(ids), strict=True)
                    if s == st.APPLYING]
        return applying if len(applying) >= 2 else None

    in_flight = wait_until(two_applying, 20, interval=0.02, what="two requests applying")
    killed_at = time.monotonic()
    pids = stack.kill_workers()
    print(f"SIGKILLed workers {pids} while {in_flight} were applying")
    started = len(stack.workers)
    stack.start_worker()
    stack.start_worker()
    stack.wait_workers(2, newer_than=started)
    up = time.monotonic()
    # Recovery waits on three clocks, all short: the dead workers' alive keys (10 s) after
    # which the live ones queue their jobs again, request locks (10 s after their last
    # renewal) and the dead scheduler's heartbeat (15 s), after which a live worker takes
    # over its lock (RQ would wait 61 s) and the retries run again.
    try:
        took = stack.wait_final(ids, RECOVERY_BOUND)
    except AssertionError as exc:
        raise StuckAfterKill(str(exc)) from None
    finally:
        left = {i: (stack.store.state(i) or {}).get("state") for i in ids}
        print(f"states after the kill: {left}; locks: {stack.locks()}; "
              f"ttl of in-flight locks: "
              f"{[stack.redis.pttl(f'approver:lock:{i}') for i in in_flight]} ms; "
              f"rq jobs: {[(i, stack.redis.hget(f'rq:job:kr-{i}', 'status')) for i in ids]}")
    print(f"all final {time.monotonic() - killed_at:.1f}s after the kill, "
          f"{took:.1f}s after new workers were up ({up - killed_at:.1f}s after the kill)")
    assert_applied_once(stack, created, developer_map(created, emails))


def test_the_reconciler_comes_back_when_redis_restarts_empty(stack):
    stack.set_webhook(None)  # only the reconciler can find these requests
    stack.stop_redis()
    for path in sorted(stack.redis_server.directory.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()  # no persistence: all is lost
    stack.start_redis()
    up = time.monotonic()
    emails = developers(2, 1, 1)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    # APPROVER_RECONCILE_INTERVAL is 2 s here: a pass is queued at the workers' first
    # tick with Redis back (~1 s), then every 2 s; the old chain of scheduled jobs never
    # ran again. The bound leaves room for a loaded machine.
    stack.wait_final(ids, 10)
    print(f"decided {time.monotonic() - up:.1f}s after Redis came back empty")
    assert {stack.store.state(i)["trigger"] for i in ids} == {"reconciler"}
    assert_applied_once(stack, created, developer_map(created, emails))


def test_dashboard_500s_timeouts_and_a_hang(stack):
    emails = developers(6, 4, 2)
    stack.fault("PUT", APPROVE, status=500, times=5)
    stack.fault("GET", "/api/portal/requests", status=500, times=5)
    # Timeouts: longer than APPROVER_DASHBOARD_TIMEOUT=1; the Dashboard still acts on them.
    stack.fault("DELETE", REQUESTS, hang=1.5, times=2)
    stack.fault("GET", "/api/portal/developers/", hang=1.5, times=2)
    # A hang: a call that does not answer for a long time (the client gives up at 1 s).
    stack.fault("GET", "/api/portal/policies/", hang=8, times=1)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    took = stack.wait_final(ids, 50)
    calls = stack.calls()
    print(f"all final in {took:.1f}s; Dashboard statuses "
          f"{dict(Counter((c['method'], c['status']) for c in calls))}")
    assert [c for c in calls if c["status"] == 500]  # the faults were hit
    assert stack.control("GET", "faults")["faults"] == []  # and all used up
    approves, deletes = assert_applied_once(stack, created, developer_map(created, emails))
    assert sum(approves.values()) == 6 and sum(deletes.values()) == 4


def test_fifty_concurrent_duplicate_deliveries(stack):
    stack.set_webhook(None)
    emails = [ALICE] * 5
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    deliveries = [r for r in created for _ in range(50)]
    random.shuffle(deliveries)
    session_per_thread = threading.local()

    def send(request):
        if not hasattr(session_per_thread, "s"):
            session_per_thread.s = requests.Session()
        body = {"event": "key_request_event.submitted", "data": request}
        resp = session_per_thread.s.post(stack.hook_url, json=body, timeout=(2, 5))
        return resp.status_code, resp.json().get("status"), request["id"]

    started = time.monotonic()
    answers = run_threads(send, deliveries, 25)
    print(f"250 deliveries in {time.monotonic() - started:.2f}s")
    assert {status for status, _, _ in answers} == {202}
    # A finished job is not kept (result_ttl=0), so a delivery after it queues another job
    # that finds the request final: duplicates collapse only while a job is pending.
    queued = Counter(i for _, what, i in answers if what == "queued")
    print(f"jobs queued per request: {sorted(queued.values())} of 50 deliveries each")
    assert set(queued) == set(ids)
    stack.wait_final(ids, 30)
    assert_applied_once(stack, created, developer_map(created, emails))
    attempts = Counter(c["path"][len(APPROVE):] for c in stack.calls("PUT", APPROVE))
    assert attempts == dict.fromkeys(ids, 1)  # one approve call each, not only one success
    assert decided_entries(stack, ids) == dict.fromkeys(ids, 1)


def test_lost_webhooks_are_decided_by_the_reconciler(stack):
    stack.set_webhook(None)  # Tyk's webhook is at-most-once: here every one is lost
    emails = developers(4, 4, 4)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    took = stack.wait_final(ids, 30)
    print(f"reconciler decided {len(ids)} requests in {took:.1f}s")
    assert {stack.store.state(i)["trigger"] for i in ids} == {"reconciler"}
    assert_applied_once(stack, created, developer_map(created, emails))


def test_reconciler_passes_race_webhooks(stack):
    stack.set_webhook(None)
    emails = developers(10, 10, 10)
    created = stack.create(emails)
    ids = [r["id"] for r in created]
    go = threading.Event()

    def reconcile_once(_):
        go.wait(10)
        return subprocess.run(
            [sys.executable, "-m", "approver", "reconcile", "--once"], env=stack.env,
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        )

    def deliver(request):
        go.wait(10)
        return stack.post_webhook(request)[-1][0]

    results: dict[str, list] = {}
    reconcilers = threading.Thread(
        target=lambda: results.setdefault("rec", run_threads(reconcile_once, range(3), 3)),
        daemon=True)
    reconcilers.start()
    go.set()
    statuses = run_threads(deliver, created, 8)
    reconcilers.join(40)
    assert set(statuses) == {202}
    assert [p.returncode for p in results["rec"]] == [0, 0, 0], [p.stderr for p in results["rec"]]
    stack.wait_final(ids, 40)
    triggers = Counter(stack.store.state(i)["trigger"] for i in ids)
    print(f"decided by trigger: {dict(triggers)}")
    assert_applied_once(stack, created, developer_map(created, emails))
    assert decided_entries(stack, ids) == dict.fromkeys(ids, 1)
    assert BOB in emails


def test_reconciler_resumes_a_request_whose_job_used_up_its_retries(stack):
    # Six 500s: the first try and its five retries (1,1,2,2,5 s apart) all fail.
    stack.fault("PUT", APPROVE, status=500, times=6)
    [created] = stack.create([ALICE])
    request_id = created["id"]
    wait_until(lambda: stack.redis.hget(f"rq:job:kr-{request_id}", "status") == b"failed",
               30, interval=0.2, what="the job failed for good")
    assert stack.store.state(request_id)["state"] == st.FAILED
    # The Dashboard is well again; the reconciler runs every 2 s and should resume it.
    try:
        stack.wait_final([request_id], 10)
    except AssertionError as exc:
        raise NeverRetried(str(exc)) from None
    assert_applied_once(stack, [created], {request_id: ALICE})
