"""A Redis failover under a burst of webhooks: Sentinel, on real processes.

The service (one web tier of 2 gunicorn processes, two workers with RQ's scheduler) reaches
Redis through three Sentinels (passwords on Redis, from a file, and on the Sentinels). A
third of the way into a burst of webhooks a Sentinel is told to fail the master over to
its replica. Every answer must be 202 or 503 (never another 5xx) and, once Tyk has been
told again of every request it was refused, each must be applied exactly once. Requests
made after the failover with no webhook at all are found only by the reconciler, which
RQ's scheduler queues: so the scheduler, too, has followed the master.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from approver import config
from approver.state import connection
from tests.faults.conftest import (
    Stack,
    assert_applied_once,
    developer_map,
    developers,
    run_threads,
    wait_until,
)
from tests.redis_ha import Sentinels

pytestmark = pytest.mark.faults


class SentinelStack(Stack):
    """The fault stack with Redis behind Sentinels instead of one embedded server."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path, workers=2)
        (tmp_path / "ha").mkdir()
        self.redis_server = Sentinels(tmp_path / "ha")
        self.env.update(self.redis_server.env)

    @property
    def redis(self):
        if self._redis is None:
            self._redis = connection.connect(config.from_env(self.env), timeout=2)
        return self._redis


@pytest.fixture
def ha_stack(tmp_path, request):
    s = SentinelStack(tmp_path)
    try:
        s.start()
        yield s
    finally:
        if any(getattr(request.node, f"rep_{w}", None) is not None
               and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call")):
            print(s.logs())
        s.teardown()


SPACING = 0.05  # seconds between deliveries: the burst spans the failover


@pytest.mark.parametrize("how", ["sentinel-failover", "master-killed"])
def test_failover_during_a_burst_answers_202_or_503_and_applies_each_request_once(
        ha_stack, how):
    stack, ha = ha_stack, ha_stack.redis_server
    stack.set_webhook(None)  # the test is Tyk: it delivers every webhook itself
    emails = developers(20, 20, 20)
    created = stack.create(emails)
    developer_of = developer_map(created, emails)
    failed_over = threading.Event()
    statuses: list = []

    def deliver(item):
        n, request = item
        time.sleep(max(0.0, started + n * SPACING - time.monotonic()))
        if n == len(created) // 3 and not failed_over.is_set():
            failed_over.set()
            if how == "master-killed":
                ha.master.process.kill()  # SIGKILL: the Sentinels notice after 1 s
            else:
                ha.failover()
        with requests.Session() as session:
            seen = stack.post_webhook(request, session, retry_for=40)
        statuses.extend(status for status, _ in seen)
        return seen[-1][0]

    old_master = ha.master_port()
    started = time.monotonic()
    last = run_threads(deliver, list(enumerate(created)), 6)
    wait_until(lambda: ha.master_port() not in (None, old_master), 30, what="a new master")
    # Never a 5xx but 503 (Redis unreachable: Tyk is told to try again), never an error.
    assert set(statuses) <= {202, 503}, Counter(map(str, statuses))
    assert set(last) == {202}, Counter(map(str, last))

    # Made after the failover, with no webhook: only the reconciler can find these, and
    # only RQ's scheduler queues the reconciler's passes.
    late_emails = developers(2, 2, 2)
    late = stack.create(late_emails)
    everything = created + late
    stack.wait_final([r["id"] for r in everything], 90)
    assert_applied_once(stack, everything, {**developer_of, **developer_map(late, late_emails)})
    print(f"{how}: {len(created)} webhooks across a failover ({old_master} -> {ha.master_port()}): "
          f"answers {dict(Counter(map(str, statuses)))}; {len(late)} found by the reconciler")
    assert all(w.alive() for w in stack.workers)
