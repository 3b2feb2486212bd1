"""A record's indexes (unfinished, finished records, the review inbox) follow its state; a
writer that knows the record as stored sends no removal that would change nothing."""

from __future__ import annotations

import itertools

import pytest

from approver import state as st
from approver.state.records import state_key

STATES = [None, st.DECIDED, st.APPLYING, st.APPLIED, st.FAILED, st.SKIPPED, st.SHADOWED,
          st.WAITING, st.ERROR, st.IN_REVIEW]
INDEXES = {"unfinished": st.UNFINISHED_KEY, "records": st.RECORDS_KEY, "inbox": st.INBOX_KEY}


def _stored(store: st.Store, ref: str) -> tuple[dict, dict]:
    """The record's fields (times aside) and which indexes hold it."""
    record = {k: v for k, v in (store.state(ref) or {}).items() if k != "updated_at"}
    conn = store.redis
    where = {"unfinished": conn.sismember(st.UNFINISHED_KEY, ref),
             "records": conn.zscore(st.RECORDS_KEY, ref) is not None,
             "inbox": conn.zscore(st.INBOX_KEY, ref) is not None}
    return record, where


def _write(store: st.Store, ref: str, fields: dict, before: dict | None) -> list[str]:
    """Write `fields` as the pipeline does; the names of the commands sent."""
    pipe = store.redis.pipeline(transaction=True)
    store._queue_state(pipe, ref, fields, before)
    sent = [args[0][0].lower() for args in pipe.command_stack]
    pipe.execute()
    return sent


@pytest.mark.parametrize("failed_before", [False, True])
def test_a_write_that_knows_the_record_leaves_what_a_blind_write_leaves(redis_conn,
                                                                          failed_before):
    store = st.Store(redis_conn)
    for n, (was, now) in enumerate(itertools.product(STATES, STATES[1:])):
        blind, knowing = f"blind-{n}", f"knowing-{n}"
        for ref in (blind, knowing):
            if was is not None:
                _write(store, ref, {"state": was, "outcome": "approve"}, None)
            if failed_before:  # an earlier try's error, kept whatever the state
                redis_conn.hset(state_key(ref), mapping={"error": "boom",
                                                         "error_permanent": "False"})
        before = store.state(knowing) or {}
        fields = {"state": now, "reason": "decided again"}
        _write(store, blind, fields, None)
        _write(store, knowing, fields, before)
        assert _stored(store, knowing) == _stored(store, blind), (was, now)


def test_a_first_decision_sends_no_removal_from_an_index_it_is_not_in(redis_conn):
    store = st.Store(redis_conn)
    sent = _write(store, "new", {"state": st.APPLYING, "outcome": "approve"}, {})
    assert sent == ["hset", "sadd"]
    before = store.state("new")
    sent = _write(store, "new", {"state": st.APPLIED}, before)
    assert sent == ["hset", "srem", "zadd"]
    assert _stored(store, "new")[1] == {"unfinished": False, "records": True, "inbox": False}
    # Not knowing the record, every index is set right whatever it held.
    assert _write(store, "new", {"state": st.IN_REVIEW}, None) == [
        "hdel", "hset", "srem", "zrem", "zadd"]
