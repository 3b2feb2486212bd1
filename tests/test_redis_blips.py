"""Redis answers lost and Redis gone for a moment: no lock outlives its holder, no log entry
is written twice, no job is left queued in no queue.

A command can run in Redis and its answer be lost (Redis stopping right after it, a broken
connection); redis-py then sends it again on a new connection. Every step the pipeline
takes must come out the same when sent twice.
"""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from approver import state as st
from approver.pipeline import enqueue, reconcile
from tests.conftest import wait_for
from tests.redis_proxy import RedisProxy


@pytest.fixture
def proxy(redis_server, redis_conn):
    p = RedisProxy(redis_server.port)
    yield p
    p.close()


def through(proxy, retries: int = 10) -> redis.Redis:
    """A client that reaches Redis through the proxy (redis-py's retries, or none)."""
    return redis.Redis.from_url(proxy.url, socket_timeout=2, socket_connect_timeout=1,
                                retry=Retry(NoBackoff(), retries))


def test_a_lock_whose_answer_was_lost_is_still_had_by_the_one_who_took_it(proxy, redis_conn):
    store = st.Store(through(proxy))
    proxy.lose_answer_to(b"approver:lock:r1")
    with store.lock_and_state("r1") as state:  # the try is sent again: it finds its own
        assert state is None
        assert proxy.lost == 1
    assert not redis_conn.exists("approver:lock:r1")


def test_a_lock_that_could_not_be_released_is_released_once_redis_is_back(proxy, redis_conn):
    store = st.Store(through(proxy, retries=0))
    with store.lock_and_state("r2"):
        proxy.down()  # Redis stops while the lock is held: the release cannot be sent
    proxy.up()
    wait_for(lambda: not redis_conn.exists("approver:lock:r2"), 3)  # not after its TTL


def test_a_log_entry_whose_answer_was_lost_is_written_once(proxy, redis_conn):
    store = st.Store(through(proxy))
    store.log("decided", "r3", outcome="approve")
    proxy.lose_answer_to(b"approver:log")
    store.save_and_log("r3", {"state": st.APPLIED}, "applied", {"outcome": "approve"})
    assert proxy.lost == 1
    assert [e["event"] for e in store.entries(10)] == ["applied", "decided"]
    check = store.verify_log()
    assert (check.checked, check.broken, check.why) == (2, None, None)


def test_a_decision_job_popped_off_the_queue_and_lost_is_queued_again(
        rt, sandbox, work, monkeypatch):
    # RQ pops a job's id off the queue, then reads the job: if the pop's answer is lost,
    # the job stays "queued" in no queue and nobody runs it.
    request = sandbox.app.sandbox.create_key_request("carol@gmail.com",
                                                     ["64b0000000000000000000b1"], {})
    assert enqueue.decision(rt.queue, request["id"], "webhook")
    rt.redis.lpop(rt.queue.key)
    monkeypatch.setattr(enqueue, "ABANDONED_AFTER", 0)
    assert reconcile.run(rt).queued == [request["id"]]
    work()
    assert rt.store.state(request["id"])["state"] == st.IN_REVIEW
