"""The redirect-on-key-request hand-off and the developer's status page."""

from urllib.parse import parse_qs, urlsplit

import pytest

from approver import signing
from approver import store as st
from approver.web import create_app
from tests.conftest import wait_for

ALICE, BOB, DAVE = "alice@acme.partner.example", "bob@mailinator.com", "dave@example.com"
FREE, PRO = "64b0000000000000000000b1", "64b0000000000000000000b2"
CHECKOUT = "https://pay.example.com/checkout"


def submit(sandbox, email, policies=(FREE,), fields=None):
    fields = {"company": "Somewhere", "use_case": "reporting"} if fields is None else fields
    return sandbox.app.sandbox.create_key_request(email, list(policies), fields)


def assert_strict_page(response):
    assert response.content_type.startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name", ["key_request_id", "id", "request_id", "key_request"])
def test_handoff_decides_and_shows_the_outcome(client, sandbox, rt, worker_process, name):
    request = submit(sandbox, ALICE)
    response = client.get(f"/handoff?{name}={request['id']}")
    assert response.status_code == 200
    assert_strict_page(response)
    assert b"Approved" in response.data
    assert sandbox.app.sandbox.get_key_request(request["id"])["approved"] is True
    assert rt.store.state(request["id"])["trigger"] == "handoff"


def test_handoff_accepts_a_form_post(client, sandbox, worker_process):
    request = submit(sandbox, BOB)
    response = client.post("/handoff", data={"key_request_id": request["id"]})
    assert response.status_code == 200
    assert b"Not approved" in response.data
    assert b"mailinator.com is a disposable email domain" in response.data


def test_unknown_request_gets_a_404_page_once_tyk_still_lacks_it_and_nothing_happens(
        client, sandbox, rt, worker_process):
    unknown = "64b0000000000000000009ff"
    # Tyk may not have the record readable yet: it is looked for again for a while.
    response = client.get(f"/handoff?key_request_id={unknown}")
    assert response.status_code == 202 and b"Being processed" in response.data
    wait_for(lambda: (rt.store.state(unknown) or {}).get("state") == st.SKIPPED)
    response = client.get(f"/handoff?key_request_id={unknown}")
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


def test_handoff_without_a_worker_answers_being_processed(client, sandbox, rt):
    request = submit(sandbox, ALICE)
    response = client.get(f"/handoff?id={request['id']}")
    assert response.status_code == 202
    assert b"Being processed" in response.data
    assert rt.queue.count == 1


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


def test_reasons_quoting_developer_input_are_escaped(client, sandbox, rt, work):
    request = submit(sandbox, ALICE, fields={"company": "x", "use_case": "y"})
    rt.store.save_state(request["id"], state=st.APPLIED, outcome="deny", rule="r",
                        reason='<script>alert("x")</script>')
    response = client.get(f"/handoff?id={request['id']}")
    assert b'<script>alert' not in response.data
    assert b"&lt;script&gt;" in response.data


@pytest.fixture
def paid_client(settings):
    return create_app(settings.with_(checkout_url=CHECKOUT)).test_client()


def test_paid_request_is_sent_to_the_checkout_with_signed_state(
        paid_client, sandbox, rt, worker_process):
    request = submit(sandbox, DAVE, policies=[PRO])
    response = paid_client.get(
        f"/handoff?id={request['id']}&next=https://evil.example&redirect_to=//evil.example")
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == CHECKOUT
    query = parse_qs(target.query)
    assert query["key_request_id"] == [request["id"]]
    assert query["developer_id"] == [request["by_user"]]
    state = signing.verify(rt.settings.secret_key, query["state"][0], "checkout")
    assert state["kr"] == request["id"]
    assert rt.store.state(request["id"])["state"] == st.WAITING


def test_waiting_request_without_checkout_shows_why(client, sandbox, worker_process):
    request = submit(sandbox, DAVE, policies=[PRO])
    response = client.get(f"/handoff?id={request['id']}")
    assert response.status_code == 200
    assert b"Waiting for payment" in response.data


def test_status_link_shows_the_state(client, sandbox, worker_process):
    request = submit(sandbox, BOB)
    response = client.get(f"/handoff?id={request['id']}")
    link = response.data.split(b'href="')[1].split(b'"')[0].decode()
    status = client.get(urlsplit(link).path)
    assert status.status_code == 200
    assert b"Not approved" in status.data


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
