"""Paid access end to end: wait for billing, release, deadline, explicit decisions, revocation."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from approver import state as st
from approver.pipeline import billing, decide
from approver.pipeline.sources import fingerprint
from approver.rules.signals import normalise_email
from approver.state.history import History
from approver.tyk import DashboardError
from approver.web import create_app
from tests.conftest import WEBHOOK_TOKEN

SECRET = "whsec_" + base64.b64encode(b"billing-flow-secret-0123456789ab").decode()
DAVE, DAVE_ID = "dave@example.com", "64b0000000000000000000a4"
CAROL = "carol@gmail.com"
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
APPROVE = "/api/portal/requests/approve/"


@pytest.fixture
def client(settings):
    return create_app(settings.with_(billing_secrets=(SECRET,))).test_client()


def at(seconds_ago: float = 0) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(client, event: dict, msg_id: str | None = None):
    """Sign and post an event the way a billing provider does (standardwebhooks library)."""
    body = json.dumps(event)
    msg_id = msg_id or f"msg_{time.time_ns()}"
    signature = Webhook(SECRET).sign(msg_id, datetime.now(UTC), body)
    response = client.post("/billing/events", data=body, content_type="application/json",
                           headers={"webhook-id": msg_id,
                                    "webhook-timestamp": str(int(time.time())),
                                    "webhook-signature": signature})
    assert response.status_code in (200, 202), response.data
    return response


def status(client, developer, value, seconds_ago=0, by="developer_id", **kw):
    return send(client, {"type": "billing.status", "data": {
        by: developer, "status": value, "plan": "pro", "occurred_at": at(seconds_ago)}}, **kw)


def paid_request(client, sandbox, work, email=DAVE):
    request = sandbox.app.sandbox.create_key_request(email, [PRO], {"use_case": "x"})
    client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                json={"event": "key_request_event.submitted", "data": request})
    work()
    return request


def approves(sandbox, request_id):
    return [c for c in sandbox.app.sandbox.calls(method="PUT", path=APPROVE + request_id)
            if c["status"] == 200]


def test_paid_request_waits_then_is_approved_when_billing_turns_active(
        client, sandbox, rt, work):
    request = paid_request(client, sandbox, work)
    state = rt.store.state(request["id"])
    assert (state["state"], state["rule"]) == (st.WAITING, "paid-plans-need-billing")
    assert [r for r, _ in rt.store.waiting()] == [request["id"]]
    status(client, DAVE_ID, "active")
    work()
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"], state["trigger"]) == (
        st.APPLIED, "approve", "billing")
    assert len(approves(sandbox, request["id"])) == 1
    assert rt.store.waiting() == []
    events = [e["event"] for e in reversed(rt.store.entries(50))]
    assert events == ["decided", "billing", "decided", "applied"]


def test_a_billing_event_retried_after_its_reevaluation_failed_still_releases_the_wait(
        client, sandbox, rt, work):
    request = paid_request(client, sandbox, work)
    event = {"id": "evt_retried", "type": "billing.status", "source": "standard",
             "data": {"developer_id": DAVE_ID, "status": "active", "plan": "pro",
                      "occurred_at": at()}}
    sandbox.app.sandbox.add_fault("GET", "/api/portal/requests/", status=500, times=10)
    with pytest.raises(DashboardError):  # stored, then the re-evaluation failed: RQ retries
        billing.handle(rt, event)
    sandbox.app.sandbox.clear_faults()
    assert billing.handle(rt, event)["status"] == "applied"  # the retry
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"]) == (st.APPLIED, "approve")


def test_billing_stored_while_a_wait_is_being_decided_is_decided_on(
        client, sandbox, rt, work, monkeypatch):
    request = paid_request(client, sandbox, work)
    gather, changes = decide.gather, ["active"]

    def gather_then_billing_changes(*args):
        context = gather(*args)
        if changes:  # another worker stores this now, finds the request locked, moves on
            rt.billing.apply(DAVE_ID, changes.pop(), "pro", at())
        return context

    monkeypatch.setattr(decide.pending, "gather", gather_then_billing_changes)
    result = decide.run(rt, request["id"], "billing")
    assert (result.state, result.outcome) == (st.APPLIED, "approve")


def test_developer_is_found_by_email(client, sandbox, rt, work):
    request = paid_request(client, sandbox, work)
    status(client, DAVE, "trialing", by="developer_email")
    work()
    assert rt.store.state(request["id"])["outcome"] == "approve"
    assert rt.billing.get(DAVE_ID)["status"] == "trialing"


def test_past_due_keeps_waiting(client, sandbox, rt, work):
    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "past_due")
    work()
    assert rt.store.state(request["id"])["state"] == st.WAITING
    assert approves(sandbox, request["id"]) == []


def test_out_of_order_events_never_overwrite_newer_ones(client, sandbox, rt, work):
    status(client, DAVE_ID, "canceled", seconds_ago=10)
    status(client, DAVE_ID, "active", seconds_ago=60)  # late, older
    work()
    assert rt.billing.get(DAVE_ID)["status"] == "canceled"
    request = paid_request(client, sandbox, work)
    assert rt.store.state(request["id"])["state"] == st.WAITING


def test_wait_past_its_deadline_applies_on_timeout(client, sandbox, rt, work, capsys):
    from approver import cli

    request = paid_request(client, sandbox, work)
    # The deadline passes (72 h in the shipped rules): move it into the past.
    rt.store.save_state(request["id"], deadline=time.time() - 1)
    rt.store.park(request["id"], DAVE_ID, time.time() - 1)
    assert cli.main(["reconcile", "--once"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overdue"] == [request["id"]]
    work()
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"], state["trigger"]) == (st.APPLIED, "deny", "deadline")
    assert "waited past the deadline" in state["reason"]
    assert sandbox.app.sandbox.get_key_request(request["id"]) is None
    assert rt.store.waiting() == []


def test_waiting_requests_are_listed(client, sandbox, rt, work, capsys):
    from approver import cli

    request = paid_request(client, sandbox, work)
    assert cli.main(["decisions", "list", "--waiting", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["request_id"], r["rule"]) for r in rows] == [
        (request["id"], "paid-plans-need-billing")]


def test_explicit_decision_approves_once_with_the_billing_reason(client, sandbox, rt, work):
    request = sandbox.app.sandbox.create_key_request(CAROL, [FREE], {"use_case": "x"})
    event = {"type": "key_request.decision", "data": {
        "key_request_id": request["id"], "decision": "approve", "reason": "paid invoice 123"}}
    send(client, event, msg_id="msg_decision_1")
    send(client, event, msg_id="msg_decision_1")  # replayed delivery
    send(client, event, msg_id="msg_decision_2")  # a second decision for the same request
    work()
    state = rt.store.state(request["id"])
    assert (state["outcome"], state["reason"]) == ("approve", "paid invoice 123")
    assert len(approves(sandbox, request["id"])) == 1
    refused = [e for e in rt.store.entries(50) if e["event"] == "refused"]
    assert len(refused) == 1 and "no longer pending" in refused[0]["why"]


def test_explicit_deny_deletes_the_request(client, sandbox, rt, work):
    request = sandbox.app.sandbox.create_key_request(CAROL, [FREE], {"use_case": "x"})
    send(client, {"type": "key_request.decision", "data": {
        "key_request_id": request["id"], "decision": "deny", "reason": "card declined"}})
    work()
    assert sandbox.app.sandbox.get_key_request(request["id"]) is None
    assert rt.store.state(request["id"])["reason"] == "card declined"


def test_cancel_revokes_paid_keys_we_approved_and_is_safe_to_repeat(client, sandbox, rt, work):
    tyk = sandbox.app.sandbox
    rt.settings = rt.settings.with_(billing_cancel_settle=0)  # no settle window: at once
    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "active", seconds_ago=30)
    work()
    key_ids = rt.store.state(request["id"])["key_ids"]
    held = {fingerprint(k) for k in tyk.developer(DAVE_ID)["keys"]}
    assert key_ids and set(key_ids) <= held  # fingerprints of the keys, never the keys
    free_key = "5d0c6b1e7a9f3c24"  # Dave's Free key, not approved by us: left alone
    status(client, DAVE_ID, "canceled", seconds_ago=20)
    work()
    keys = tyk.developer(DAVE_ID)["keys"]
    assert not {fingerprint(k) for k in keys} & set(key_ids)
    assert free_key in keys
    revoked = [e for e in rt.store.entries(50) if e["event"] == "revoked"]
    assert [e["key_id"] for e in revoked] == key_ids
    assert rt.store.approved_keys(DAVE_ID)[key_ids[0]]["revoked_at"]
    # A later cancel (or a replay of the job) revokes nothing twice.
    status(client, DAVE_ID, "canceled", seconds_ago=5)
    work()
    deletes = tyk.calls(method="DELETE", path=f"/api/portal/developers/{DAVE_ID}/keys/")
    assert len(deletes) == len(key_ids)
    # The history knows: Dave, back under another account and an alias, had keys revoked.
    again = History(rt.redis).read("next", "another-id", normalise_email("Dave+2@example.com"),
                                   "example.com")
    assert again["history.keys_revoked"] == len(key_ids)
    assert again["history.keys_revoked_from_domain"] == len(key_ids)


def test_past_due_beyond_grace_revokes(settings, sandbox, rt, work):
    from approver.pipeline import billing

    client = create_app(settings.with_(billing_secrets=(SECRET,))).test_client()
    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "active", seconds_ago=30)
    work()
    key_ids = rt.store.state(request["id"])["key_ids"]
    rt.settings = rt.settings.with_(past_due_grace=3600)
    status(client, DAVE_ID, "past_due", seconds_ago=10)
    work()
    scheduled = rt.queue.scheduled_job_registry.get_job_ids()
    assert any(j.startswith(f"pastdue-{DAVE_ID}-") for j in scheduled)
    held = rt.billing.get(DAVE_ID)
    assert billing.past_due_check(rt, DAVE_ID, held["updated_at"])["revoked"] == []  # not yet
    # The grace period ends with the developer still past due: the scheduled check revokes.
    rt.settings = rt.settings.with_(past_due_grace=5)
    assert billing.past_due_check(rt, DAVE_ID, held["updated_at"])["revoked"] == key_ids


def test_past_due_check_does_nothing_once_paid_again(client, sandbox, rt, work):
    from approver.pipeline import billing

    status(client, DAVE_ID, "past_due", seconds_ago=30)
    work()
    old = rt.billing.get(DAVE_ID)["updated_at"]
    status(client, DAVE_ID, "active", seconds_ago=10)
    work()
    assert billing.past_due_check(rt, DAVE_ID, old)["status"] == "recovered or changed"


def test_billing_show(client, sandbox, rt, work, capsys):
    from approver import cli

    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "past_due")
    work()
    assert cli.main(["billing", "show", DAVE_ID]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["billing"]["status"] == "past_due"
    assert shown["waiting"] == [request["id"]]
    assert cli.main(["billing", "show", "dave@example.com"]) == 0  # found by email
    assert json.loads(capsys.readouterr().out)["developer_id"] == DAVE_ID
    assert cli.main(["billing", "show", "nobody@example.com"]) == 2
    assert "give the developer id" in capsys.readouterr().err


def test_a_billing_decision_on_a_waiting_request_ends_its_wait(client, sandbox, rt, work):
    request = paid_request(client, sandbox, work)
    assert [r for r, _ in rt.store.waiting()] == [request["id"]]
    result = decide.decide_explicitly(rt, request["id"], "deny", "unpaid", source="billing:x")
    assert (result.state, result.outcome) == (st.APPLIED, "deny")
    assert rt.store.waiting() == []
    assert rt.store.waiting_for(DAVE_ID) == []


def test_a_key_id_kept_raw_by_an_older_version_is_revoked_and_never_logged_raw(
        client, sandbox, rt, work, caplog):
    tyk = sandbox.app.sandbox
    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "active", seconds_ago=30)
    work()
    [kept] = rt.store.state(request["id"])["key_ids"]
    raw = next(k for k in tyk.developer(DAVE_ID)["keys"] if fingerprint(k) == kept)
    about = rt.store.approved_keys(DAVE_ID)[kept]
    rt.redis.hdel(f"approver:keys:{DAVE_ID}", kept)  # as versions before fingerprints kept it
    rt.store.remember_keys(DAVE_ID, [raw], **{k: v for k, v in about.items() if k != "at"})
    caplog.set_level("INFO")
    revoked = billing.revoke_paid_keys(rt, DAVE_ID, reason="canceled")
    assert revoked == [kept]
    assert raw not in tyk.developer(DAVE_ID)["keys"]
    assert [e["key_id"] for e in rt.store.entries(50) if e["event"] == "revoked"] == [kept]
    assert raw not in caplog.text


def test_revocation_reads_policies_through_the_decisions_cache(client, sandbox, rt, work):
    tyk = sandbox.app.sandbox
    request = paid_request(client, sandbox, work)
    status(client, DAVE_ID, "active", seconds_ago=30)
    work()
    assert rt.store.state(request["id"])["key_ids"]
    before = len(tyk.calls(method="GET", path=f"/api/portal/policies/{PRO}"))
    assert billing.revoke_paid_keys(rt, DAVE_ID, reason="canceled")
    assert len(tyk.calls(method="GET", path=f"/api/portal/policies/{PRO}")) == before
