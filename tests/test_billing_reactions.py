"""Billing reactions come from the developer's stored state, not from the event; a cancel
revokes only once it has settled; approvals in flight are covered either way."""

from datetime import UTC, datetime, timedelta

import pytest

from approver import state as st
from approver.pipeline import billing, decide
from approver.pipeline.sources import fingerprint
from tests.conftest import wait_for

DAVE, DAVE_ID = "dave@example.com", "64b0000000000000000000a4"
PRO = "64b0000000000000000000b2"
BASE = datetime.now(UTC) - timedelta(hours=1)
_sent = iter(range(1, 10_000))


def event(status: str, seconds: float) -> dict:
    """A billing event for Dave that occurred `seconds` after BASE."""
    return {"id": f"evt_react_{next(_sent)}", "type": "billing.status", "source": "standard",
            "data": {"developer_id": DAVE_ID, "status": status, "plan": "pro",
                     "occurred_at": (BASE + timedelta(seconds=seconds)).isoformat()}}


def held_paid_keys(sandbox) -> set[str]:
    """Fingerprints of Dave's keys for the paid policy, as Tyk has them."""
    keys = sandbox.app.sandbox.developer(DAVE)["keys"]  # key id -> its policies
    return {fingerprint(k) for k, policies in keys.items() if PRO in policies}


def paid_key(rt, sandbox) -> str:
    """A paid request of Dave's, approved on active billing; its key's fingerprint."""
    request = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "x"})
    result = decide.run(rt, request["id"], "webhook")
    assert (result.state, result.outcome) == (st.APPLIED, "approve"), result
    [key] = rt.store.state(request["id"])["key_ids"]
    return key


def run_jobs(rt) -> None:
    """Run what is queued, and what is scheduled once it is due, in this process: as a
    worker would, without a worker's start and stop around each try."""
    registry = rt.queue.scheduled_job_registry
    while rt.queue.count or registry.count:
        for job in rt.queue.get_jobs():
            rt.queue.remove(job)
            job.perform()
        for job_id in registry.get_job_ids():
            when = registry.get_scheduled_time(job_id)
            wait_for(lambda when=when: datetime.now(UTC) >= when, 30)
            registry.remove(job_id)
            rt.queue.fetch_job(job_id).perform()


@pytest.fixture
def settle(rt):
    def set_(seconds: int) -> None:
        rt.settings = rt.settings.with_(billing_cancel_settle=seconds)
    return set_


def test_a_plan_switch_canceled_then_active_costs_no_key(rt, sandbox, settle):
    settle(1)
    billing.handle(rt, event("active", 0))
    key = paid_key(rt, sandbox)
    # The plan switch: `canceled`, then `active` a second later (taken in either order).
    billing.handle(rt, event("canceled", 10))
    billing.handle(rt, event("active", 11))
    run_jobs(rt)  # the settle window's check runs once due
    assert key in held_paid_keys(sandbox)
    assert not rt.store.approved_keys(DAVE_ID)[key].get("revoked_at")


def test_a_cancel_revokes_once_it_has_held_for_the_settle_window(rt, sandbox, settle):
    settle(1)
    billing.handle(rt, event("active", 0))
    key = paid_key(rt, sandbox)
    assert billing.handle(rt, event("canceled", 10))["revoked"] == []  # not yet
    assert key in held_paid_keys(sandbox)
    run_jobs(rt)
    assert key not in held_paid_keys(sandbox)
    assert rt.store.approved_keys(DAVE_ID)[key]["revoked_because"] == "billing canceled"


def test_the_reaction_to_an_older_cancel_is_decided_by_the_newer_state_stored_since(
        rt, sandbox, settle, monkeypatch):
    settle(0)
    billing.handle(rt, event("active", 0))
    key = paid_key(rt, sandbox)
    store = rt.billing.apply

    def then_a_newer_active(developer_id, status, plan, occurred_at):
        changed = store(developer_id, status, plan, occurred_at)
        if status == "canceled":  # another worker stores the plan switch's `active` now
            store(developer_id, "active", plan, (BASE + timedelta(seconds=11)).isoformat())
        return changed

    monkeypatch.setattr(rt.billing, "apply", then_a_newer_active)
    result = billing.handle(rt, event("canceled", 10))
    assert result["revoked"] == []
    assert key in held_paid_keys(sandbox)


def test_a_key_approved_while_a_cancel_is_handled_is_revoked_afterwards(
        rt, sandbox, settle, monkeypatch):
    settle(0)
    billing.handle(rt, event("active", 0))
    request = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "x"})
    source = rt.sources["classic"]
    approve, handled = source.approve, []

    def approve_while_a_cancel_is_handled(req):
        done = approve(req)  # Tyk made the key; we have not recorded it yet
        handled.append(billing.handle(rt, event("canceled", 10)))  # another worker
        return done

    monkeypatch.setattr(source, "approve", approve_while_a_cancel_is_handled)
    result = decide.run(rt, request["id"], "webhook")
    assert (result.state, result.outcome) == (st.APPLIED, "approve")
    assert handled[0]["revoked"] == []  # the cancel found no key of ours to revoke
    [key] = rt.store.state(request["id"])["key_ids"]
    run_jobs(rt)  # the approval saw billing canceled: the check it queued revokes
    assert key not in held_paid_keys(sandbox)
    assert rt.store.approved_keys(DAVE_ID)[key]["revoked_because"] == "billing canceled"


def test_a_key_approved_after_a_newer_active_is_kept(rt, sandbox, settle):
    settle(0)
    billing.handle(rt, event("canceled", 0))
    request = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "x"})
    assert decide.run(rt, request["id"], "webhook").state == st.WAITING
    billing.handle(rt, event("active", 5))  # releases the wait: approved
    [key] = rt.store.state(request["id"])["key_ids"]
    run_jobs(rt)
    assert key in held_paid_keys(sandbox)
