"""Billing state in Redis: newest event wins, atomically; the replay guard's lifetime."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from approver.state.billing import BillingState, seen_key

DEVELOPER = "5e430ef68131890001b83d2e"


@pytest.fixture
def state(redis_conn):
    return BillingState(redis_conn)


def test_first_status_is_stored(state, redis_conn):
    assert state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00Z") is True
    held = state.get(DEVELOPER)
    assert isinstance(held.pop("stored_ts"), float)  # when it was stored: settle windows
    assert held == {
        "status": "active", "plan": "pro", "updated_at": "2026-11-23T10:00:00Z",
        "updated_ts": datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp(),
    }


def test_newer_event_replaces_the_status(state):
    state.apply(DEVELOPER, "trialing", "pro", "2026-11-23T10:00:00Z")
    assert state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00.000001Z") is True
    assert state.get(DEVELOPER)["status"] == "active"


def test_stale_billing_event_is_ignored(state):
    state.apply(DEVELOPER, "canceled", "pro", "2026-11-23T10:00:00Z")
    assert state.apply(DEVELOPER, "active", "pro", "2026-11-23T09:59:59.999Z") is False
    assert state.get(DEVELOPER)["status"] == "canceled"


def test_event_as_old_as_the_held_one_is_ignored(state):
    state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00Z")
    assert state.apply(DEVELOPER, "past_due", "pro", "2026-11-23T10:00:00Z") is False
    assert state.get(DEVELOPER)["status"] == "active"


def test_times_are_compared_in_utc_not_as_text(state):
    # 11:30+02:00 is 09:30Z: older, though its text sorts later.
    state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00Z")
    assert state.apply(DEVELOPER, "canceled", None, "2026-11-23T11:30:00+02:00") is False
    # 05:30-05:00 is 10:30Z: newer, though its text sorts earlier.
    assert state.apply(DEVELOPER, "canceled", None, "2026-11-23T05:30:00-05:00") is True
    assert state.get(DEVELOPER)["updated_at"] == "2026-11-23T10:30:00Z"


def test_out_of_order_delivery_ends_with_the_newest(state):
    base = datetime(2026, 11, 23, 10, tzinfo=UTC)
    updates = [(3, "canceled"), (1, "trialing"), (2, "active"), (0, "trialing")]
    results = [state.apply(DEVELOPER, s, "pro", base + timedelta(minutes=m)) for m, s in updates]
    assert results == [True, False, False, False]
    assert state.get(DEVELOPER)["status"] == "canceled"


def test_aware_datetimes_are_accepted_and_naive_refused(state):
    moment = datetime(2026, 11, 23, 12, tzinfo=timezone(timedelta(hours=2)))
    assert state.apply(DEVELOPER, "active", None, moment) is True
    assert state.get(DEVELOPER)["updated_at"] == "2026-11-23T10:00:00Z"
    with pytest.raises(ValueError):
        state.apply(DEVELOPER, "active", None, datetime(2026, 11, 24))


def test_missing_plan_is_stored_empty_and_read_as_none(state, redis_conn):
    state.apply(DEVELOPER, "active", None, "2026-11-23T10:00:00Z")
    assert redis_conn.hget(f"approver:billing:{DEVELOPER}", "plan") == b""
    assert state.get(DEVELOPER)["plan"] is None


def test_developers_are_kept_apart(state):
    state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00Z")
    assert state.apply("other-developer", "trialing", None, "2026-11-01T00:00:00Z") is True
    assert state.get(DEVELOPER)["status"] == "active"
    assert state.get("never-heard-of") is None


@pytest.mark.parametrize("bad", ["", "seen:abc", "a:b"])
def test_developer_ids_that_could_clash_with_other_keys_are_refused(state, bad):
    with pytest.raises(ValueError):
        state.apply(bad, "active", None, "2026-11-23T10:00:00Z")


def test_no_secret_or_event_body_is_stored(state, redis_conn):
    state.apply(DEVELOPER, "active", "pro", "2026-11-23T10:00:00Z")
    state.mark_seen("msg_1")
    keys = sorted(k.decode() for k in redis_conn.keys("*"))
    assert keys == [f"approver:billing:{DEVELOPER}", seen_key("msg_1")]
    assert redis_conn.get(seen_key("msg_1")) == b"1"


def test_seen_event_ids_are_remembered_for_at_least_seven_days(state, redis_conn):
    assert state.seen("msg_1") is False
    state.mark_seen("msg_1")
    assert state.seen("msg_1") is True
    assert state.seen("msg_2") is False
    ttl = redis_conn.ttl(seen_key("msg_1"))
    assert 7 * 86400 <= ttl <= 8 * 86400


def test_seen_key_is_a_hash_of_the_id(state):
    key = seen_key("any id: with spaces and colons")
    assert key.startswith("approver:billing:seen:")
    assert len(key.rsplit(":", 1)[1]) == 64
