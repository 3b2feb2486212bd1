"""A backlog of pending requests: the reconciler pages through Tyk and queues only what is
new; the shared ceiling on Dashboard calls per second, applied inside the API client."""

from __future__ import annotations

import math
import threading
import time

from approver.pipeline import reconcile
from approver.sandbox.state import PAGE_SIZE
from approver.state.ceiling import Ceiling
from approver.tyk import Dashboard
from tests.conftest import SANDBOX_SECRET
from tests.test_cli import ALICE, BOB, CAROL, FREE

BACKLOG = 150


def commands(redis_conn) -> int:
    """Redis commands served so far (INFO commandstats, INFO itself excluded)."""
    stats = redis_conn.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def pages_asked(pending: int, first_pass: bool) -> list[str]:
    """The `p` a walk asks for: 0 (the first page), 1 only until the client knows pages
    count from 1 (it repeats page 0), then 2 on; it ends after a page shorter than the
    first, else at an empty one."""
    pages = max(1, math.ceil(pending / PAGE_SIZE))
    asked = [0, *([1] if first_pass else []), *range(2, pages + 1)]
    if pages == 1 or pending % PAGE_SIZE == 0:
        asked.append(pages + 1)
    return [str(p) for p in asked]


def measured_pass(rt, sandbox, redis_conn):
    """One reconciler pass: (what it did, Redis commands it sent, Dashboard calls)."""
    sandbox.app.sandbox.clear_calls()
    before = commands(redis_conn)
    result = reconcile.run(rt)
    return result, commands(redis_conn) - before - 1, sandbox.app.sandbox.calls()


def test_the_reconciler_pages_through_tyk_and_queues_only_what_is_new(
        rt, sandbox, redis_conn, work):
    tyk = sandbox.app.sandbox
    for i in range(BACKLOG):
        tyk.create_key_request((ALICE, BOB, CAROL)[i % 3], [FREE], {"n": str(i)})
    pending = len(tyk.key_requests(approved=False))

    first, _, calls = measured_pass(rt, sandbox, redis_conn)
    assert len(first.queued) == first.pending == pending
    assert [c["query"].get("p") for c in calls] == pages_asked(pending, first_pass=True)

    # Everything is queued now: a pass queues nothing and reads two things per request.
    again, sent, calls = measured_pass(rt, sandbox, redis_conn)
    assert (again.queued, again.already_queued) == ([], pending)
    assert [c["query"].get("p") for c in calls] == pages_asked(pending, first_pass=False)
    # Two reads per request (state, job status), the ceiling's script per Dashboard page
    # (5 commands counted inside it, per attempt), and a fixed few (waits, retention).
    assert sent <= 2 * pending + 10 * len(calls) + 10, (sent, pending, len(calls))

    work()
    decided, sent_after, calls = measured_pass(rt, sandbox, redis_conn)
    still = len(tyk.key_requests(approved=False))  # the reviewed ones stay pending in Tyk
    assert decided.queued == [] and decided.decided + decided.in_review == still
    assert [c["query"].get("p") for c in calls] == pages_asked(still, first_pass=False)
    assert sent_after <= 2 * still + 10 * len(calls) + 10


def test_the_ceiling_hook_runs_before_every_attempt_retries_included(sandbox):
    seen = []
    tyk = sandbox.app.sandbox
    tyk.add_fault("GET", "/api/portal/policies/", status=500, times=1)
    with Dashboard(sandbox.url, SANDBOX_SECRET, backoff=0,
                   before_call=lambda: seen.append(1)) as dashboard:
        dashboard.get_policy(FREE)
    assert len(seen) == 2


def test_the_runtime_puts_its_dashboard_under_the_shared_ceiling(rt, settings):
    assert isinstance(rt.dashboard.before_call, Ceiling)
    assert rt.dashboard.before_call.rate == settings.dashboard_rate == 100.0
    rt.settings = settings.with_(dashboard_rate=0.0)
    assert rt.ceiling("dashboard") is None


def test_the_ceiling_is_shared_by_every_process_using_the_same_redis(redis_conn):
    rate, burst = 40.0, 10.0
    granted = []
    # Two "workers" (their own Ceiling objects), calling as fast as they can.
    ceilings = [Ceiling(redis_conn, "test", rate, burst) for _ in range(2)]
    started = time.monotonic()
    stop = started + 0.6

    def hammer(ceiling):
        while time.monotonic() < stop:
            ceiling()
            granted.append(time.monotonic())

    threads = [threading.Thread(target=hammer, args=(c,)) for c in ceilings for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = max(granted) - started
    # Never more than the burst plus the rate over the time taken, whatever the load.
    assert len(granted) <= burst + rate * elapsed + 2, (len(granted), elapsed)
    assert len(granted) > burst  # and calls went on after the burst
    assert sum(c.waited for c in ceilings) > 0
