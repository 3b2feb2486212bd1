"""Every key accounted for: lost answers, people acting in Tyk, and what is told to whom.

Each interleaving is forced: an adapter call does its work in Tyk and then loses its answer,
or a person acts in Tyk between our read and our call, on real Redis and the sandboxes.
"""

from datetime import UTC, datetime

import pytest

from approver import state as st
from approver.pipeline import billing, decide, enqueue, jobs, reconcile, review
from approver.pipeline.decide import apply, followup
from approver.pipeline.sources import fingerprint
from approver.tyk import DashboardError
from tests.conftest import with_portal

ALICE, BOB, CAROL = "alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com"
DAVE, DAVE_ID = "dave@example.com", "64b0000000000000000000a4"
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
NOTIFY = ("https://hooks.example/approver",)
NOTIFY_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def lost_answer(monkeypatch, source, method: str) -> None:
    """The adapter's `method` is carried out in Tyk, then its answer is lost."""
    real = getattr(source, method)

    def call(*args, **kwargs):
        real(*args, **kwargs)
        raise TimeoutError("the answer was lost")

    monkeypatch.setattr(source, method, call)


def billing_active(rt, developer_id=DAVE_ID) -> None:
    rt.billing.apply(developer_id, "active", "pro", datetime.now(UTC).isoformat())


def paid_keys(sandbox) -> set[str]:
    keys = sandbox.app.sandbox.developer(DAVE)["keys"]  # key id -> its policies
    return {fingerprint(k) for k, policies in keys.items() if PRO in policies}


# -- 2: an approval whose answer was lost keeps its keys -------------------------------------

def test_an_approval_whose_answer_was_lost_keeps_its_key_and_is_revoked_on_cancel(
        rt, sandbox, monkeypatch):
    billing_active(rt)
    first = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "x"})
    decide.run(rt, first["id"], "webhook")
    older = paid_keys(sandbox)  # a paid key Dave held before: never taken for the new one
    request = sandbox.app.sandbox.create_key_request(DAVE, [PRO], {"use_case": "y"})
    with monkeypatch.context() as patch:
        lost_answer(patch, rt.sources["classic"], "approve")
        with pytest.raises(TimeoutError):
            decide.run(rt, request["id"], "webhook")
    assert rt.store.state(request["id"])["state"] == st.FAILED
    decide.run(rt, request["id"], "resume")  # the retry (or the reconciler) finds it approved
    state = rt.store.state(request["id"])
    new = paid_keys(sandbox) - older
    assert (state["state"], state["outcome"], len(new)) == (st.APPLIED, "approve", 1)
    assert set(state["key_ids"]) == new
    assert set(state["held_before"]) == older  # as recorded before the call, not overwritten
    kept = rt.store.approved_keys(DAVE_ID)
    assert set(kept[next(iter(new))]["held_before"]) == older
    rt.settings = rt.settings.with_(billing_cancel_settle=0)
    billing.handle(rt, {"id": "evt_c", "type": "billing.status", "data": {
        "developer_id": DAVE_ID, "status": "canceled", "plan": "pro",
        "occurred_at": datetime.now(UTC).isoformat()}})
    assert paid_keys(sandbox) == set()


def test_a_portal_approval_whose_answer_was_lost_keeps_its_access_request(
        rt, sandbox, portal, monkeypatch):
    rt = _with_portal(rt, portal, monkeypatch)
    ar = portal.app.sandbox.create_access_request(ALICE, ["Free"], "Free plan")
    ref = f"portal-{ar['ID']}"
    with monkeypatch.context() as patch:
        lost_answer(patch, rt.sources["portal"], "approve")
        with pytest.raises(TimeoutError):
            decide.run(rt, ref, "webhook")
    decide.run(rt, ref, "resume")
    state = rt.store.state(ref)
    assert (state["state"], state["outcome"], state["key_ids"]) == (
        st.APPLIED, "approve", [str(ar["ID"])])
    assert str(ar["ID"]) in rt.store.approved_keys(state["developer_id"])


def _with_portal(rt, portal, monkeypatch):
    from approver.pipeline import runtime

    current = runtime.Runtime(with_portal(rt.settings, portal))
    runtime.install(current)  # the `rt` fixture installs None again after the test
    return current


# -- 4: our deny racing a person's approve ----------------------------------------------------

def test_a_deny_that_lost_the_race_to_a_persons_approve_records_the_live_key(
        rt, sandbox, monkeypatch):
    request = sandbox.app.sandbox.create_key_request(BOB, [FREE], {"use_case": "x"})
    dashboard = rt.sources["classic"].dashboard
    delete = dashboard.delete_key_request

    def a_person_approves_first(request_id):
        sandbox.app.sandbox.approve_key_request(request_id)  # in the Dashboard, just now
        return delete(request_id)

    monkeypatch.setattr(dashboard, "delete_key_request", a_person_approves_first)
    result = decide.run(rt, request["id"], "webhook")
    state = rt.store.state(request["id"])
    developer = sandbox.app.sandbox.developer(BOB)
    live = {fingerprint(k) for k in developer["keys"]}
    assert (result.outcome, state["state"], state["outcome"], state["rule"]) == (
        "approve", st.APPLIED, "approve", "tyk")
    assert live and set(state["key_ids"]) == live
    assert set(rt.store.approved_keys(developer["id"])) == live


# -- 5: results told to people are what happened ------------------------------------------------

def test_a_persons_approval_another_admin_deleted_in_tyk_is_not_reported_applied(rt, sandbox):
    request = sandbox.app.sandbox.create_key_request(CAROL, [FREE], {"use_case": "x"})
    assert decide.run(rt, request["id"], "webhook").state == st.IN_REVIEW
    taken = review.claim(rt.store, request["id"], "approve", "ok", "alice", "console",
                         "127.0.0.1")
    sandbox.app.sandbox.add_fault("PUT", "/api/portal/requests/approve/", status=500, times=5)
    with pytest.raises(DashboardError):
        jobs.decide_claimed(request["id"], taken)  # recorded, then Tyk failed
    sandbox.app.sandbox.clear_faults()
    sandbox.app.sandbox.delete_key_request(request["id"])  # another admin, in Tyk
    result = jobs.decide_claimed(request["id"], taken)  # the job's retry
    assert (result["state"], result["reason"]) == ("refused", "it was denied in Tyk meanwhile")
    assert rt.store.claim_of(request["id"])["result"]["state"] == "refused"


# -- 6: a decision undone in Tyk leaves the unfinished ones for good --------------------------

def test_a_decision_undone_in_tyk_is_recorded_once_and_not_resumed_again(rt, sandbox, work):
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    rt.store.save_state(request["id"], state=st.APPLYING, outcome="approve", rule="partners",
                        reason="r", decision_id="d1", developer_id="x", policies=[FREE])
    sandbox.app.sandbox.delete_key_request(request["id"])  # a person, before it was applied
    for _ in range(3):  # reconciler passes
        reconcile.run(rt)
        work()
    assert request["id"] not in rt.store.unfinished()
    assert [e["event"] for e in rt.store.entries(20, request["id"])] == ["decided"]
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"], state["superseded"]) == (st.APPLIED, "deny", "d1")


# -- no notification lost -------------------------------------------------------------------------

def test_a_crash_between_the_record_and_its_notification_is_made_good_by_the_reconciler(
        rt, sandbox, monkeypatch):
    rt.settings = rt.settings.with_(notify_urls=NOTIFY, notify_secret=NOTIFY_SECRET)
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    with monkeypatch.context() as patch:
        patch.setattr(apply, "follow_up", lambda *a: None)  # the process died right here
        assert decide.run(rt, request["id"], "webhook").state == st.APPLIED
    notify_queue = enqueue.notify_queue(rt.queue)
    assert notify_queue.count == 0
    monkeypatch.setattr(followup, "LOST_AFTER", 0)
    reconcile.run(rt)
    [job] = notify_queue.get_jobs()
    assert job.args[1]["type"] == "key_request.approved"
    assert reconcile.run(rt).to_dict().get("followed_up") == []  # once
    assert len(notify_queue.get_jobs()) == 1


def test_a_billing_event_whose_pop_answer_was_lost_is_queued_again(rt, sandbox, work,
                                                                   monkeypatch):
    event = {"id": "evt_lost_pop", "type": "billing.status", "source": "standard",
             "data": {"developer_id": DAVE_ID, "status": "active", "plan": "pro",
                      "occurred_at": datetime.now(UTC).isoformat()}}
    rt.queue.enqueue("approver.jobs.billing_event", event, job_id="billing-lost-pop")
    rt.redis.lpop(rt.queue.key)  # a worker popped it, and the answer was lost
    work()
    assert rt.billing.get(DAVE_ID) is None  # nobody runs it
    monkeypatch.setattr(enqueue, "ABANDONED_AFTER", 0)
    reconcile.run(rt)
    work()
    assert rt.billing.get(DAVE_ID)["status"] == "active"


# -- a record a Redis failover lost in part --------------------------------------------------

@pytest.mark.parametrize("left", [st.APPLYING, st.DECIDED, st.FAILED])
def test_a_record_that_holds_no_decision_is_decided_afresh_not_failed_again(rt, sandbox, left):
    """A failover can lose a record that reached no replica; a state write after it (the
    'applying' before a resume's call to Tyk) recreates part of it: a state and no outcome.
    Such a request is read from Tyk and decided by the rules, once."""
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    rt.store.save_state(request["id"], state=left, updated_at=st.now_iso())
    result = decide.run(rt, request["id"], "reconciler")
    state = rt.store.state(request["id"])
    assert (result.state, state["state"], state["outcome"], state["rule"]) == (
        st.APPLIED, st.APPLIED, "approve", "partners")
    assert len(sandbox.app.sandbox.calls("PUT", "/api/portal/requests/approve/")) == 1
