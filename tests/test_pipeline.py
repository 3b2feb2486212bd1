"""Webhook to decision to Dashboard, end to end: the sandbox over HTTP, a real Redis and RQ."""

import json

import pytest

from approver import state as st
from approver.pipeline import decide, enqueue, reconcile
from approver.pipeline.sources import fingerprint
from tests.conftest import WEBHOOK_TOKEN, drain, wait_for

ALICE, BOB, CAROL = "alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com"
FREE = "64b0000000000000000000b1"
APPROVE_PATH = "/api/portal/requests/approve/"


def submit(sandbox, email, policies=(FREE,), fields=None):
    """A developer asks for a key in the portal; returns the request Tyk stored."""
    fields = {"company": "Somewhere", "use_case": "reporting"} if fields is None else fields
    return sandbox.app.sandbox.create_key_request(email, list(policies), fields)


def deliver(client, request, **overrides):
    """Tyk posts its key_request_event webhook for the request."""
    body = {"event": "key_request_event.submitted", "data": {**request, **overrides}}
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body)
    assert response.status_code == 202, response.data
    return response


def calls(sandbox, method, path):
    return [c for c in sandbox.app.sandbox.calls(method=method, path=path)]


@pytest.mark.parametrize("detail, approve", [
    ("portal-keys-page", "with-password"),   # the developer embedded in the request
    ("manage-key-requests", "raw-key-only"),  # not embedded: read before approving
])
def test_partner_request_is_approved_in_the_dashboard(client, work, rt, sandbox, detail,
                                                      approve):
    sandbox.app.sandbox.shapes.choose("GET /api/portal/requests/{id}", detail)
    sandbox.app.sandbox.shapes.choose("PUT /api/portal/requests/approve/{id}", approve)
    request = submit(sandbox, ALICE)
    deliver(client, request)
    work()
    tyk = sandbox.app.sandbox
    assert tyk.get_key_request(request["id"])["approved"] is True
    state = rt.store.state(request["id"])
    assert state["state"] == st.APPLIED
    assert state["outcome"] == "approve"
    assert state["rule"] == "partners"
    assert state["reason"] == "acme.partner.example is a partner domain."
    assert state["revision"]
    # The new key's id is read back from the developer record; only its fingerprint is
    # kept (without key hashing the id is the key).
    developer = tyk.developer(request["by_user"])
    assert state["key_ids"] == [fingerprint(k) for k in developer["keys"]]
    assert set(rt.store.approved_keys(request["by_user"])) == set(state["key_ids"])


def test_disposable_email_request_is_denied_and_deleted(client, work, rt, sandbox):
    request = submit(sandbox, BOB)
    deliver(client, request)
    work()
    assert sandbox.app.sandbox.get_key_request(request["id"]) is None
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"], state["rule"]) == (
        st.APPLIED, "deny", "deny-disposable-email")
    assert "mailinator.com is a disposable email domain" in state["reason"]
    assert len(calls(sandbox, "DELETE", f"/api/portal/requests/{request['id']}")) == 1


def test_free_mail_request_is_left_pending_for_review(client, work, rt, sandbox):
    request = submit(sandbox, CAROL)
    deliver(client, request)
    work()
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is False
    state = rt.store.state(request["id"])
    assert (state["outcome"], state["rule"]) == ("review", "free-mail-to-review")
    assert calls(sandbox, "PUT", APPROVE_PATH) == []
    assert calls(sandbox, "DELETE", "/api/portal/requests/") == []


def test_forged_payload_is_decided_on_the_dashboards_truth(client, work, rt, sandbox):
    request = submit(sandbox, BOB)
    # The payload claims a partner developer; the Dashboard says it is Bob's.
    deliver(client, request, by_user="64b0000000000000000000a1",
            portal_developer={"id": "64b0000000000000000000a1", "email": ALICE})
    work()
    state = rt.store.state(request["id"])
    assert (state["outcome"], state["rule"]) == ("deny", "deny-disposable-email")
    assert calls(sandbox, "PUT", APPROVE_PATH) == []


def test_webhook_for_an_unknown_request_is_retried_then_skipped_leaving_nothing(
        client, work, rt, sandbox):
    unknown = "64b0000000000000000009ff"
    deliver(client, {"id": unknown})
    work()
    # Not readable (yet): tried again after the queue's backoff, nothing recorded.
    assert rt.store.state(unknown) is None
    assert rt.queue.fetch_job(f"kr-{unknown}").retries_left == len(rt.settings.retry_delays) - 1
    drain(rt, work)
    assert len(calls(sandbox, "GET", f"/api/portal/requests/{unknown}")) == 1 + len(
        rt.settings.retry_delays)
    # Then skipped, in a state that expires; no decision-log entry, no failed job.
    assert rt.store.state(unknown)["state"] == st.SKIPPED
    assert 0 < rt.redis.ttl(f"approver:request:{unknown}") <= decide.UNKNOWN_TTL
    assert [e for e in rt.store.entries(50) if e["request_id"] == unknown] == []
    assert calls(sandbox, "PUT", APPROVE_PATH) == []


def test_an_id_tyk_calls_invalid_is_skipped_at_once(client, work, rt, sandbox):
    # Tyk answers 400 "Invalid key request ID." for an id no request can have. The web
    # tier refuses such ids; `approver replay` or a portal listing one still queues it.
    enqueue.decision(rt.queue, "not-a-tyk-id", "replay")
    work()
    assert rt.store.state("not-a-tyk-id")["state"] == st.SKIPPED
    assert len(calls(sandbox, "GET", "/api/portal/requests/not-a-tyk-id")) == 1


def test_a_webhook_that_comes_before_its_record_is_readable_is_still_decided(
        client, work, rt, sandbox):
    sandbox.app.sandbox.set_mode("record_delay", 1.5)
    request = submit(sandbox, ALICE)
    deliver(client, request)
    work()
    assert rt.store.state(request["id"]) is None  # 404 at first: tried again later
    drain(rt, work)
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"]) == (st.APPLIED, "approve")


def test_a_skipped_request_that_shows_up_pending_is_decided_by_the_reconciler(
        client, work, rt, sandbox):
    sandbox.app.sandbox.set_mode("record_delay", 60)
    request = submit(sandbox, ALICE)
    decide.run(rt, request["id"], "handoff")  # outside a job: no retries, skipped now
    assert rt.store.state(request["id"])["state"] == st.SKIPPED
    sandbox.app.sandbox.set_mode("record_delay", 0)  # ...and now Tyk lists it
    assert reconcile.run(rt).queued == [request["id"]]
    work()
    assert rt.store.state(request["id"])["outcome"] == "approve"


def test_duplicate_deliveries_approve_once(client, work, rt, sandbox):
    request = submit(sandbox, ALICE)
    for _ in range(5):
        deliver(client, request)
    work()
    for _ in range(3):  # and again after it was applied
        deliver(client, request)
        work()
    approves = calls(sandbox, "PUT", APPROVE_PATH)
    assert [c["status"] for c in approves] == [200]
    decided = [e for e in rt.store.entries(100) if e["event"] == "decided"]
    assert len(decided) == 1


def test_a_developer_not_embedded_is_read_once_before_a_decision(client, work, rt, sandbox):
    # manage-key-requests: the request read by id does not embed `portal_developer`.
    sandbox.app.sandbox.shapes.choose("GET /api/portal/requests/{id}", "manage-key-requests")
    approved, reviewed = submit(sandbox, ALICE), submit(sandbox, CAROL)
    for request in (approved, reviewed):
        deliver(client, request)
    work()
    assert rt.store.state(approved["id"])["outcome"] == "approve"
    assert rt.store.state(reviewed["id"])["outcome"] == "review"
    # One read to decide, and for the approval one more after it (its new key's id).
    for request, reads in ((approved, 2), (reviewed, 1)):
        path = f"/api/portal/developers/{request['by_user']}"
        assert len(calls(sandbox, "GET", path)) == reads
    developer = sandbox.app.sandbox.developer(approved["by_user"])
    assert rt.store.state(approved["id"])["key_ids"] == [
        fingerprint(k) for k in developer["keys"]]


def test_already_approved_request_is_skipped(client, work, rt, sandbox):
    request = submit(sandbox, CAROL)
    sandbox.app.sandbox.approve_key_request(request["id"])  # a human approved it first
    deliver(client, request)
    work()
    assert rt.store.state(request["id"])["state"] == st.SKIPPED
    assert calls(sandbox, "PUT", APPROVE_PATH) == []


def test_reconciler_decides_a_request_whose_webhook_was_lost(rt, work, sandbox, capsys):
    from approver import cli

    request = submit(sandbox, ALICE)  # no webhook is delivered
    assert cli.main(["reconcile", "--once"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert request["id"] in report["queued"]
    work()
    assert rt.store.state(request["id"])["outcome"] == "approve"
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is True
    # A second pass finds it decided and queues nothing.
    assert cli.main(["reconcile", "--once"]) == 0
    assert json.loads(capsys.readouterr().out)["queued"] == []


def test_interrupted_apply_is_resumed_not_redecided(client, work, rt, sandbox):
    request = submit(sandbox, BOB)
    # A worker recorded "deny" and died before calling the Dashboard.
    rt.store.save_state(request["id"], state=st.APPLYING, outcome="deny", rule="old-rule",
                        reason="recorded before the crash", decision_id="d1")
    deliver(client, request)
    work()
    state = rt.store.state(request["id"])
    assert (state["state"], state["rule"]) == (st.APPLIED, "old-rule")
    assert sandbox.app.sandbox.get_key_request(request["id"]) is None


def test_dashboard_500_on_approve_is_retried_until_applied_once(
        client, rt, sandbox, worker_process):
    tyk = sandbox.app.sandbox
    tyk.add_fault("PUT", APPROVE_PATH, status=500, times=2)
    request = submit(sandbox, ALICE)
    deliver(client, request)
    wait_for(lambda: (rt.store.state(request["id"]) or {}).get("state") == st.APPLIED)
    assert [c["status"] for c in calls(sandbox, "PUT", APPROVE_PATH)] == [500, 500, 200]
    assert tyk.get_key_request(request["id"])["approved"] is True
    events = [e["event"] for e in reversed(rt.store.entries(50, request_id=request["id"]))]
    assert events == ["decided", "apply_failed", "apply_failed", "applied"]
    assert not rt.store.locked(request["id"])


def test_no_raw_key_or_secret_reaches_logs_or_redis(
        client, rt, sandbox, worker_process, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    tyk = sandbox.app.sandbox
    requests = [submit(sandbox, email) for email in (ALICE, BOB, CAROL, ALICE)]
    requests.append(submit(sandbox, "alice@acme.partner.example",
                           policies=["64b0000000000000000000b5"]))  # OAuth: a client secret
    for request in requests:
        deliver(client, request)
    client.post("/hooks/tyk/wrong-token-0123456789abc", json={})
    wait_for(lambda: all((rt.store.state(r["id"]) or {}).get("state") in st.SETTLED_STATES
                         for r in requests))
    issued = tyk.issued_secrets()
    assert len(issued) >= 3  # raw keys, and the OAuth client secret
    secrets = [*issued, WEBHOOK_TOKEN, rt.settings.dashboard_secret]
    texts = [caplog.text, worker_process.read_text(), *dump_redis(rt.redis)]
    for secret in secrets:
        for text in texts:
            assert secret not in text


def dump_redis(conn) -> list[str]:
    """Every key and value in Redis, as text."""
    out = []
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key).decode()
        if kind == "string":
            value = conn.get(key)
        elif kind == "hash":
            value = conn.hgetall(key)
        elif kind == "list":
            value = conn.lrange(key, 0, -1)
        elif kind == "set":
            value = conn.smembers(key)
        elif kind == "zset":
            value = conn.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = conn.xrange(key)
        else:
            value = kind
        out.append(f"{key!r} {value!r}")
    return out


def test_an_explicit_decision_on_a_request_once_skipped_as_unknown_is_kept(rt, sandbox):
    sandbox.app.sandbox.set_mode("record_delay", 60)
    request = submit(sandbox, ALICE)
    decide.run(rt, request["id"], "handoff")
    assert rt.redis.ttl(f"approver:request:{request['id']}") > 0
    sandbox.app.sandbox.set_mode("record_delay", 0)
    result = decide.decide_explicitly(rt, request["id"], "deny", "unpaid", source="billing:x")
    assert result.state == st.APPLIED
    assert rt.redis.ttl(f"approver:request:{request['id']}") == -1  # kept, no expiry


def test_a_billing_decision_in_shadow_mode_is_recorded_and_nothing_applied(rt, sandbox):
    rt.settings = rt.settings.with_(mode="shadow")
    request = submit(sandbox, ALICE)
    result = decide.decide_explicitly(rt, request["id"], "approve", "paid", source="billing:x")
    assert result.state == st.SHADOWED
    assert rt.store.state(request["id"])["state"] == st.SHADOWED
    assert calls(sandbox, "PUT", APPROVE_PATH + request["id"]) == []
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is False
