"""The redirect-on-key-request hand-off and the page that follows its decision."""

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from approver import signing
from approver import state as st
from approver.rules import developer_message
from approver.web import create_app, handoff
from tests.test_billing_intake import standard_headers
from tests.test_hostile_input import BILLING_SECRET

ALICE, BOB, DAVE = "alice@acme.partner.example", "bob@mailinator.com", "dave@example.com"
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
CHECKOUT = "https://pay.example.com/checkout"
UNKNOWN = "64b0000000000000000009ff"


def submit(sandbox, email, policies=(FREE,), fields=None):
    fields = {"company": "Somewhere", "use_case": "reporting"} if fields is None else fields
    return sandbox.app.sandbox.create_key_request(email, list(policies), fields)


def assert_strict_page(response):
    assert response.content_type.startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def refresh_target(response) -> str | None:
    """Where the page's meta refresh sends the browser, if it has one."""
    found = re.search(rb'<meta http-equiv="refresh" content="\d+; url=([^"]+)">', response.data)
    return found.group(1).decode().replace("&amp;", "&") if found else None


def follow(client, response, timeout=30.0):
    """Follow a page's refreshes, as a browser does, until one does not refresh."""
    deadline = time.monotonic() + timeout
    while (target := refresh_target(response)) is not None:
        assert time.monotonic() < deadline, "the page kept refreshing"
        time.sleep(0.1)
        response = client.get(urlsplit(target).path)
    return response


@pytest.mark.parametrize("name", ["key_request_id", "id", "request_id", "key_request"])
def test_handoff_decides_and_the_page_follows_to_the_outcome(client, sandbox, rt, worker_process,
                                                             name):
    request = submit(sandbox, ALICE)
    response = client.get(f"/handoff?{name}={request['id']}")
    assert_strict_page(response)
    final = follow(client, response)
    assert final.status_code == 200
    assert_strict_page(final)
    assert b"Approved" in final.data
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is True
    assert rt.store.state(request["id"])["trigger"] == "handoff"


def test_handoff_answers_at_once_with_a_page_that_reloads_itself(client, sandbox, rt):
    request = submit(sandbox, ALICE)
    response = client.get(f"/handoff?id={request['id']}")  # no worker: nothing decides
    assert response.status_code == 202
    assert_strict_page(response)
    assert b"Deciding" in response.data
    target = urlsplit(refresh_target(response))
    assert target.path.startswith("/status/")
    assert rt.queue.count == 1
    again = client.get(target.path)
    assert again.status_code == 202 and refresh_target(again)
    assert rt.queue.count == 1  # the page that reloads queues nothing more


def test_handoff_never_waits_for_a_decision(client, sandbox, monkeypatch):
    request = submit(sandbox, ALICE)
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    client.get(f"/handoff?id={request['id']}")
    assert slept == []


def test_the_page_stops_asking_after_a_while(client, sandbox, rt):
    request = submit(sandbox, ALICE)
    old = signing.sign(rt.settings.secret_key, {"kr": request["id"]},
                       handoff.STATUS_TTL - handoff.POLL_FOR - 1, "status")
    response = client.get(f"/status/{old}")
    assert response.status_code == 202
    assert refresh_target(response) is None
    assert b"still being processed" in response.data


def test_handoff_accepts_a_form_post(client, sandbox, worker_process):
    request = submit(sandbox, BOB)
    final = follow(client, client.post("/handoff", data={"key_request_id": request["id"]}))
    assert final.status_code == 200
    assert b"Not approved" in final.data


def test_a_denied_request_shows_the_rules_message_not_its_reason(client, sandbox,
                                                                   worker_process):
    request = submit(sandbox, BOB)
    final = follow(client, client.get(f"/handoff?id={request['id']}"))
    assert b"Not approved" in final.data
    assert b"Disposable email addresses are not accepted" in final.data  # its `message`
    assert b"is a disposable email domain" not in final.data  # its internal `reason`
    assert b"mailinator" not in final.data and b"deny-disposable-email" not in final.data
    assert b"Reason" not in final.data


@pytest.mark.parametrize("state,outcome", [(st.APPLIED, "deny"), (st.APPLIED, "review"),
                                           (st.WAITING, "wait"), (st.SHADOWED, "approve")])
def test_no_page_shows_the_rules_reason(client, sandbox, rt, state, outcome):
    request = submit(sandbox, ALICE)
    rt.store.save_state(request["id"], state=state, outcome=outcome, rule="r",
                        reason="secret-ish reason about dave@example.com",
                        developer_id="64b00000000000000000dead")
    response = client.get(f"/handoff?id={request['id']}")
    assert response.status_code == 200
    assert b"secret-ish" not in response.data and b"dave@" not in response.data
    assert b"dead" not in response.data
    if state != st.SHADOWED:  # no message recorded: the plain one for the outcome
        assert developer_message(outcome).encode() in response.data


def test_no_page_carries_a_long_lived_link(client, sandbox, rt):
    request = submit(sandbox, ALICE)
    response = client.get(f"/handoff?id={request['id']}")
    token = urlsplit(refresh_target(response)).path.removeprefix("/status/")
    payload = signing.verify(rt.settings.secret_key, token, "status")
    assert payload["exp"] - time.time() <= handoff.STATUS_TTL <= 3600
    rt.store.save_state(request["id"], state=st.APPLIED, outcome="approve")
    final = client.get(f"/handoff?id={request['id']}")
    assert b"/status/" not in final.data


def test_unknown_request_gets_a_404_page_and_nothing_happens(client, sandbox, worker_process):
    response = follow(client, client.get(f"/handoff?key_request_id={UNKNOWN}"))
    assert response.status_code == 404
    assert_strict_page(response)
    assert sandbox.app.sandbox.calls(method="PUT") == []
    assert sandbox.app.sandbox.calls(method="DELETE") == []


def test_already_decided_request_says_so_without_queueing(client, sandbox, rt, work):
    request = submit(sandbox, ALICE)
    client.get(f"/handoff?id={request['id']}")  # nobody works yet: it is queued
    work()
    assert rt.store.state(request["id"])["state"] == st.APPLIED
    response = client.get(f"/handoff?id={request['id']}")
    assert b"Approved" in response.data
    assert rt.queue.count == 0


@pytest.mark.parametrize("query", [
    "", "?id=", "?other=1", "?key_request_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "?id=../../admin", "?id=" + "a" * 300,
])
def test_bad_ids_get_a_clear_page_and_are_not_reflected(client, rt, query):
    response = client.get(f"/handoff{query}")
    assert response.status_code in (400, 404)
    assert_strict_page(response)
    assert b"<script>" not in response.data and b"../../admin" not in response.data
    assert rt.queue.count == 0


@pytest.mark.parametrize("request_id", [
    "not-hex-at-all", "64b0000000000000000000zz", "64B0000000000000000000FF",
    UNKNOWN[:-1], UNKNOWN + "0", f"{UNKNOWN}%0A", f"%20{UNKNOWN}", "portal-12",
])
def test_ids_that_are_not_tyk_object_ids_queue_nothing_and_keep_nothing(client, rt, redis_conn,
                                                                      request_id):
    response = client.get(f"/handoff?id={request_id}")
    assert response.status_code == 404
    assert rt.queue.count == 0
    assert [k for k in redis_conn.scan_iter() if b":limit:" not in k] == []


@pytest.fixture
def paid_client(settings):
    return create_app(settings.with_(checkout_url=CHECKOUT,
                                     billing_secrets=(BILLING_SECRET,))).test_client()


def test_paid_request_goes_to_the_checkout_with_an_opaque_state_only(
        paid_client, sandbox, rt, worker_process):
    request = submit(sandbox, DAVE, policies=[PRO])
    response = follow(paid_client, paid_client.get(
        f"/handoff?id={request['id']}&next=https://evil.example&redirect_to=//evil.example"))
    assert response.status_code == 303
    location = response.headers["Location"]
    target = urlsplit(location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == CHECKOUT
    query = parse_qs(target.query)
    assert set(query) == {"state"}
    assert request["id"] not in location and request["by_user"] not in location
    assert rt.store.state(request["id"])["state"] == st.WAITING
    # The checkout service resolves the state, signed like a billing event.
    body = json.dumps({"state": query["state"][0]}).encode()
    resolved = paid_client.post("/billing/checkout-state", data=body,
                                content_type="application/json",
                                headers=standard_headers(body, secret=BILLING_SECRET))
    assert resolved.status_code == 200
    assert resolved.json == {"key_request_id": request["id"], "developer_id": request["by_user"]}


def test_checkout_state_is_told_only_to_a_signed_caller(paid_client, rt):
    rt.redis.set(handoff.CHECKOUT_PREFIX + "known-state", '{"key_request_id": "k"}')
    body = json.dumps({"state": "known-state"}).encode()
    unsigned = paid_client.post("/billing/checkout-state", data=body,
                                content_type="application/json")
    assert unsigned.status_code == 401
    unknown = json.dumps({"state": "no-such-state"}).encode()
    answer = paid_client.post("/billing/checkout-state", data=unknown,
                              content_type="application/json",
                              headers=standard_headers(unknown, secret=BILLING_SECRET))
    assert answer.status_code == 404


def checkout_state(client, body: bytes, content_type="application/json", **signing):
    return client.post("/billing/checkout-state", data=body, content_type=content_type,
                       headers=standard_headers(body, secret=BILLING_SECRET, **signing))


def test_a_checkout_state_body_over_the_limit_is_413(paid_client, rt):
    body = json.dumps({"state": "x" * rt.settings.body_limit}).encode()
    answer = checkout_state(paid_client, body)
    assert answer.status_code == 413 and answer.json["error"]["code"] == "too_large"


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"{not json", "application/json", 400, "malformed_json"),
    (b'{"state": NaN}', "application/json", 400, "malformed_json"),
    (b"\xff\xfe", "application/json", 400, "malformed_json"),
    (b'{"state": "known-state"}', "text/plain", 415, "unsupported_media_type"),
])
def test_a_signed_checkout_state_that_is_not_json_is_refused(paid_client, rt, body,
                                                            content_type, status, code):
    rt.redis.set(handoff.CHECKOUT_PREFIX + "known-state", '{"key_request_id": "k"}')
    answer = checkout_state(paid_client, body, content_type)
    assert answer.status_code == status and answer.json["error"]["code"] == code


def test_a_checkout_state_signed_long_ago_is_refused_as_a_replay(paid_client, rt):
    rt.redis.set(handoff.CHECKOUT_PREFIX + "known-state", '{"key_request_id": "k"}')
    body = json.dumps({"state": "known-state"}).encode()
    answer = checkout_state(paid_client, body, at=int(time.time()) - 600)
    assert answer.status_code == 401 and answer.json["error"]["code"] == "bad_signature"
    assert b'"k"' not in answer.data


def test_waiting_request_without_checkout_shows_why(client, sandbox, worker_process):
    request = submit(sandbox, DAVE, policies=[PRO])
    response = follow(client, client.get(f"/handoff?id={request['id']}"))
    assert response.status_code == 200
    assert b"Waiting for payment" in response.data


@pytest.mark.parametrize("token", ["garbage", "a.b", "", "x" * 500])
def test_forged_or_malformed_status_tokens_get_404(client, token):
    response = client.get(f"/status/{token}") if token else client.get("/status/")
    assert response.status_code == 404


def test_expired_status_token_gets_404(client, rt):
    token = signing.sign(rt.settings.secret_key, {"kr": "abc"}, -1, "status")
    assert client.get(f"/status/{token}").status_code == 404


def test_checkout_state_is_not_a_status_token(client, rt):
    token = signing.sign(rt.settings.secret_key, {"kr": "abc"}, 60, "checkout")
    assert client.get(f"/status/{token}").status_code == 404


# -- a rate limit per client address ---------------------------------------------------------

def limited_client(settings, **changes):
    return create_app(settings.with_(handoff_limit=3, **changes)).test_client()


def handoff_from(client, peer, forwarded=None):
    environ = {"REMOTE_ADDR": peer}
    if forwarded:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.get("/handoff?id=not-an-object-id", environ_overrides=environ)


def test_handoffs_are_limited_per_client_address(settings, rt):
    client = limited_client(settings)
    assert [handoff_from(client, "203.0.113.7").status_code for _ in range(4)] == [
        404, 404, 404, 429]
    refused = handoff_from(client, "203.0.113.7")
    assert refused.headers["Retry-After"] == "60"
    assert_strict_page(refused)
    assert handoff_from(client, "203.0.113.8").status_code == 404  # another address


def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(settings, rt):
    client = limited_client(settings)
    answers = [handoff_from(client, "203.0.113.7", f"198.51.100.{n}").status_code
               for n in range(4)]
    assert answers == [404, 404, 404, 429]


def test_clients_behind_a_trusted_proxy_are_told_apart(settings, rt):
    import ipaddress

    client = limited_client(settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    for _ in range(3):
        assert handoff_from(client, "10.1.2.3", "203.0.113.7").status_code == 404
    assert handoff_from(client, "10.1.2.3", "203.0.113.7").status_code == 429
    # A client cannot choose its address: it can only write what comes before the proxy's.
    assert handoff_from(client, "10.1.2.3", "198.51.100.1, 203.0.113.7").status_code == 429
    assert handoff_from(client, "10.1.2.3", "203.0.113.8, 10.9.9.9").status_code == 404
