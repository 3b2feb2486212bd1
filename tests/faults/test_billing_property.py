"""A property of billing under concurrency: whatever the interleaving, the developer ends
with exactly the keys the newest billing state implies.

Each round (one per seed) sends a burst of billing events for one developer, in random
order and with random statuses (the newest `active` or `canceled`), while paid key requests
of theirs arrive, over three real `approver worker` processes, one of which is SIGKILLed
at a random moment and replaced. Once nothing is queued, running, scheduled or locked:
newest `active`, every request of the round is approved and the developer holds exactly the
keys approved since the last round that ended `canceled` (a request left waiting then is
approved once billing is active again); newest `canceled`, once it has
settled (the default 15 s window), they hold no paid key at all.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from approver import state as st
from approver.pipeline.sources import fingerprint
from tests.faults.conftest import FIELDS, wait_until

pytestmark = pytest.mark.faults

DAVE, DAVE_ID = "dave@example.com", "64b0000000000000000000a4"
PRO = "64b0000000000000000000b2"
SEEDS = (20261205, 7, 1234)
EVENTS, REQUESTS = 5, 2


def _event(status: str, moment: datetime, n: int) -> dict:
    return {"id": f"evt_prop_{n}", "type": "billing.status", "source": "standard",
            "data": {"developer_id": DAVE_ID, "status": status, "plan": "pro",
                     "occurred_at": moment.isoformat(timespec="milliseconds")}}


def _paid_keys(stack) -> set[str]:
    """Fingerprints of Dave's keys for the paid policy, as the Dashboard has them."""
    resp = stack.http.get(f"{stack.dashboard}/api/portal/developers/{DAVE_ID}", timeout=5)
    assert resp.ok, resp.text
    return {fingerprint(k) for k, policies in (resp.json().get("keys") or {}).items()
            if PRO in policies}


def _quiet(stack, queue: Queue):
    """A predicate: idle for a second in a row (nothing queued, running, scheduled or locked)."""
    since: list[float] = []

    def idle():
        scheduled = [j for j in queue.scheduled_job_registry.get_job_ids()
                     if not j.startswith("reconcile")]
        # A job "queued" in no queue (a pop lost with a killed worker) is work to come too:
        # the reconciler puts it back.
        queued = [k for k in stack.redis.scan_iter(match=b"rq:job:*", count=1000)
                  if k.count(b":") == 2 and stack.redis.hget(k, "status") == b"queued"]
        busy = (queue.count or queue.started_job_registry.count or scheduled
                or stack.locks() or queued)
        if busy:
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= 1.0

    return idle


@pytest.mark.parametrize("stack", [{"workers": 3}], indirect=True)
def test_the_developer_ends_with_the_keys_the_newest_billing_state_implies(stack):
    queue = Queue("approver", connection=stack.redis, serializer=JSONSerializer)
    start = datetime.now(UTC) - timedelta(hours=1)
    sent = 0
    every: list[str] = []  # every request of every round
    revoked: set[str] = set()  # keys approved up to the last round that ended canceled
    for round_, seed in enumerate(SEEDS):
        rng = random.Random(seed)
        base = start + timedelta(minutes=10 * round_)
        statuses = [rng.choice(["active", "trialing", "past_due", "canceled"])
                    for _ in range(EVENTS - 1)] + [rng.choice(["active", "canceled"])]
        burst = []
        for n, status in enumerate(statuses, 1):
            sent += 1
            burst.append(_event(status, base + timedelta(seconds=n), sent))
        newest = statuses[-1]
        rng.shuffle(burst)
        # Events, key requests and a crash, interleaved at random.
        actions = [("event", e) for e in burst] + [("request", None)] * REQUESTS
        rng.shuffle(actions)
        crash_at = rng.randrange(len(actions))
        ids = []
        for i, (kind, event) in enumerate(actions):
            if kind == "event":
                queue.enqueue("approver.jobs.billing_event", event, job_id=f"b-{event['id']}")
            else:
                ids.append(stack.control("POST", "key-requests", json={
                    "developer": DAVE, "policies": [PRO], "fields": FIELDS})["id"])
            if i == crash_at:
                victim = rng.choice(stack.live_workers())
                victim.kill()  # SIGKILL, mid-job or not: what it held is taken over
                stack.start_worker()
        wait_until(_quiet(stack, queue), 90, interval=0.2, what=f"round {round_} handled")
        billing = stack.redis.hget(f"approver:billing:{DAVE_ID}", "status")
        assert billing == newest.encode(), (round_, billing, newest)
        every += ids
        states = stack.states(every)
        approved = {k for s in states.values() for k in (s or {}).get("key_ids") or []}
        held = _paid_keys(stack)
        if newest == "active":
            # Every request, of this round or waiting since an earlier one, is approved;
            # the keys are those approved since the last cancel, no more, no fewer.
            assert all((s or {}).get("state") == st.APPLIED
                       and s.get("outcome") == "approve" for s in states.values()), states
            assert held == approved - revoked, (round_, seed, held, approved - revoked)
        else:
            assert held == set(), (round_, seed, held)
            assert all((s or {}).get("state") in (st.WAITING, st.APPLIED)
                       for s in states.values()), states
            revoked = approved
