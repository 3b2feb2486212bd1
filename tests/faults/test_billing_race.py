"""Billing events racing each other on two real workers: no billing change may be lost.

Bursts of out-of-order billing events for one developer are queued at once, so the two
`approver worker` processes take them together; each event re-evaluates the developer's
waiting requests, which the two workers then fight over. A rule asks a fact plugin that
takes 0.2 s (a CRM lookup, `plugins/slow_crm.py`), so each decision stays open for a while
after it read the billing state, as it does in deployments with such plugins. Only the
newest event of a burst says `active`: the billing state is never active before it is
stored, and always after. Every waiting request must then end approved: a request left
waiting with billing active would be denied at its deadline, a paying customer refused.
On the code before the fix, about one round in six lost a change.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from approver import state as st
from tests.faults.conftest import FIELDS, ROOT, wait_until

pytestmark = pytest.mark.faults

DAVE, DAVE_ID = "dave@example.com", "64b0000000000000000000a4"
PRO = "64b0000000000000000000b2"
ROUNDS, WAITING, BURST = 24, 2, 4
SEED = 20240613
PLUGINS = ROOT / "tests" / "faults" / "plugins"
CRM_RULE = """version: 1
rules:
  - id: crm-blocked
    description: The CRM blocks this developer (a lookup that takes a while).
    when:
      crm.status: blocked
    then: deny
    reason: The CRM blocks this developer.
"""


def with_slow_plugin(stack, tmp_path) -> None:
    """Start the stack's workers again with the slow CRM plugin and a rule that asks it."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "15-crm.yaml").write_text(CRM_RULE)
    for worker in stack.live_workers():
        worker.stop()
    stack.env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PLUGINS), stack.env.get("PYTHONPATH")) if p)
    stack.env["APPROVER_RULES"] = str(rules)
    # Cancels revoke at once: no settle-window check left scheduled after each round.
    stack.env["APPROVER_BILLING_CANCEL_SETTLE"] = "0"
    for _ in range(2):
        stack.start_worker()
    stack.wait_workers(2)


def _event(status: str, moment: datetime, n: int) -> dict:
    return {"id": f"evt_race_{n}", "type": "billing.status", "source": "standard",
            "data": {"developer_id": DAVE_ID, "status": status, "plan": "pro",
                     "occurred_at": moment.isoformat(timespec="milliseconds")}}


def test_two_workers_never_lose_the_newest_billing_state(stack, tmp_path):
    with_slow_plugin(stack, tmp_path)
    rng = random.Random(SEED)
    queue = Queue("approver", connection=stack.redis, serializer=JSONSerializer)
    start = datetime.now(UTC) - timedelta(hours=1)
    count = 0

    def send(events: list[dict]) -> None:
        pipe = stack.redis.pipeline()
        for event in events:
            queue.enqueue("approver.jobs.billing_event", event, pipeline=pipe)
        pipe.execute()

    left_waiting = []
    for round_ in range(ROUNDS):
        base = start + timedelta(minutes=10 * round_)
        count += 1
        send([_event("canceled", base, count)])  # newer than the last round: not paying
        wait_until(lambda: (stack.store.redis.hget(f"approver:billing:{DAVE_ID}", "status")
                            == b"canceled"), 20, what="billing canceled")
        created = [stack.control("POST", "key-requests",
                                 json={"developer": DAVE, "policies": [PRO], "fields": FIELDS})
                   for _ in range(WAITING)]
        ids = [r["id"] for r in created]
        wait_until(lambda ids=ids: set(stack.store.states(ids)) == {st.WAITING}, 30,
                   what="requests waiting")
        statuses = [rng.choice(["canceled", "past_due"]) for _ in range(BURST - 1)]
        burst = []
        for n, status in enumerate([*statuses, "active"], 1):
            count += 1
            burst.append(_event(status, base + timedelta(seconds=n), count))
        rng.shuffle(burst)
        send(burst)

        quiet_since: list[float] = []

        def settled(ids=ids, quiet_since=quiet_since):
            # Idle for a second in a row: a job a worker has just popped is in no queue
            # and not yet registered as started, for a moment.
            retries = [j for j in queue.scheduled_job_registry.get_job_ids()
                       if not j.startswith("reconcile")]
            busy = (queue.count or queue.started_job_registry.count or retries
                    or stack.locks())
            if busy:
                quiet_since.clear()
                return False
            quiet_since[:] = quiet_since or [time.monotonic()]
            return time.monotonic() - quiet_since[0] >= 1.0 and stack.store.states(ids)

        wait_until(settled, 60, interval=0.2, what="the burst handled")
        # Nothing queued or running: whatever is still waiting will wait for its deadline.
        states = dict(zip(ids, stack.store.states(ids), strict=True))
        left_waiting += [i for i, s in states.items() if s == st.WAITING]
        wait_until(lambda ids=ids: set(stack.store.states(ids)) <= {st.APPLIED, st.WAITING},
                   30, what="requests settled")
    billing = stack.redis.hgetall(f"approver:billing:{DAVE_ID}")
    assert left_waiting == [], (
        f"{len(left_waiting)} requests left waiting with billing {billing}: {left_waiting}")
