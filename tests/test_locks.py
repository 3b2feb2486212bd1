"""Locks on real Redis: a contended lock raises Locked, and every "someone else holds it"
path does what it was designed to (wait, leave it to the holder, or retry)."""

import threading
from datetime import UTC, datetime

import pytest

from approver import state as st
from approver.pipeline import billing, decide, jobs, review

CAROL, DAVE, DAVE_ID = "carol@gmail.com", "dave@example.com", "64b0000000000000000000a4"
PRO = "64b0000000000000000000b2"


def event(status: str, n: int = 1) -> dict:
    return {"id": f"evt_lock_{n}", "type": "billing.status", "source": "standard",
            "data": {"developer_id": DAVE_ID, "status": status, "plan": "pro",
                     "occurred_at": datetime.now(UTC).isoformat()}}


def test_a_lock_taken_twice_raises_locked_then_is_free_once_released(redis_conn):
    store = st.Store(redis_conn)
    with store.lock_and_state("r1") as state:
        assert state is None
        with pytest.raises(st.Locked), store.lock_and_state("r1"):
            pass
        assert store.locked("r1")
    with store.lock_and_state("r1"):
        pass
    assert not store.locked("r1")


def test_a_take_sent_again_after_its_answer_was_lost_finds_the_lock_its_own(redis_conn):
    store = st.Store(redis_conn)
    keys = [st.lock_key("r2"), st.state_key("r2")]
    redis_conn.hset(st.state_key("r2"), "state", st.APPLYING)
    taken = store._acquire(keys=keys, args=["mine", 10_000])
    assert taken == [1, [b"state", b"applying"]]
    redis_conn.pexpire(keys[0], 500)
    # The same take again (redis-py resends it after a reconnect): still ours, TTL renewed.
    assert store._acquire(keys=keys, args=["mine", 10_000]) == taken
    assert redis_conn.pttl(keys[0]) > 5_000
    assert store._acquire(keys=keys, args=["theirs", 10_000]) == [0]
    assert redis_conn.get(keys[0]) == b"mine"


def test_a_developers_billing_lock_held_elsewhere_raises_locked_after_waiting(redis_conn):
    store = st.Store(redis_conn)
    with store.developer_lock(DAVE_ID), pytest.raises(st.Locked), \
            store.developer_lock(DAVE_ID, ttl=0.2):
        pass
    with store.developer_lock(DAVE_ID, ttl=0.2):
        pass


def test_a_billing_event_leaves_a_locked_wait_to_its_holder(rt, sandbox):
    request = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "x"})
    assert decide.run(rt, request["id"], "webhook").state == st.WAITING
    with rt.store.lock_and_state(request["id"]):  # another worker is deciding it
        result = billing.handle(rt, event("active"))
    assert result["released"] == [{"request_id": request["id"], "state": "locked"}]
    # The holder's run sees the billing change it was not decided on, and decides again.
    assert decide.stale_wait(rt, request["id"])
    assert decide.run(rt, request["id"], "webhook").outcome == "approve"


def test_a_decision_job_waits_for_the_holder_then_decides(rt, sandbox, monkeypatch):
    request = sandbox.app.sandbox.create_key_request(CAROL, ["64b0000000000000000000b1"],
                                                     {"use_case": "x"})
    taken, release = threading.Event(), threading.Event()

    def holder():
        with rt.store.lock_and_state(request["id"]):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(30)
    waited = []
    monkeypatch.setattr(jobs.time, "sleep", lambda s: (waited.append(s), release.set(),
                                                       thread.join(30)))
    assert jobs.decide_request(request["id"])["state"] == st.IN_REVIEW
    assert waited  # it found the lock held (Locked), waited, and went on once free


def test_a_persons_decision_on_a_locked_request_waits_for_the_holder(rt, sandbox, monkeypatch):
    request = sandbox.app.sandbox.create_key_request(CAROL, ["64b0000000000000000000b1"],
                                                     {"use_case": "x"})
    assert decide.run(rt, request["id"], "webhook").state == st.IN_REVIEW
    taken = review.claim(rt.store, request["id"], "deny", "spam", "alice", "console",
                         "127.0.0.1")
    held = rt.store.lock_and_state(request["id"])
    held.__enter__()
    waited = []
    monkeypatch.setattr(jobs.time, "sleep", lambda s: (waited.append(s),
                                                       held.__exit__(None, None, None)))
    assert jobs.decide_claimed(request["id"], taken)["state"] == st.APPLIED
    assert waited and rt.store.state(request["id"])["decided_by"] == "alice"
