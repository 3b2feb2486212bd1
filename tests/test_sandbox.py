"""The sandbox Dashboard behaves like the Tyk Dashboard subset the approver relies on."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from approver.sandbox import Sandbox, create_app, serve
from approver.sandbox.state import new_object_id

SECRET = "test-sandbox-secret"
ORG = "64b0000000000000000000e0"
# The seed's fixed ids (approver/sandbox/seed.json).
FREE, PRO, ENTERPRISE = (f"64b0000000000000000000b{n}" for n in (1, 2, 3))
BASIC, OAUTH, LEGACY = (f"64b0000000000000000000b{n}" for n in (4, 5, 6))
ALICE, BOB, CAROL, DAVE, ERIN = (f"64b0000000000000000000a{n}" for n in range(1, 6))
DAVE_KEY = "5d0c6b1e7a9f3c24"
UNKNOWN_ID = "64b0000000000000000000ff"


def auth(server):
    """The `authorization` header the server expects: its raw secret."""
    return {"authorization": server.app.config["SANDBOX_SECRET"]}


def get(server, path, **kw):
    return requests.get(server.url + path, headers=auth(server), timeout=5, **kw)


def put(server, path, **kw):
    return requests.put(server.url + path, headers=auth(server), timeout=5, **kw)


def post(server, path, **kw):
    return requests.post(server.url + path, headers=auth(server), timeout=5, **kw)


def delete(server, path, **kw):
    return requests.delete(server.url + path, headers=auth(server), timeout=5, **kw)


def error(message):
    return {"Status": "Error", "Message": message, "Meta": None}


def pending(server, developer=ALICE, policies=(PRO,), fields=None):
    """Create a key request through the Python API and return its id."""
    return server.app.sandbox.create_key_request(developer, list(policies), fields)["id"]


# ----- auth and errors ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["none", "wrong", "bearer", "prefix"])
def test_dashboard_refuses_missing_wrong_or_bearer_secret(sandbox, scheme):
    secret = auth(sandbox)["authorization"]
    headers = {
        "none": {},
        "wrong": {"authorization": "wrong"},
        "bearer": {"authorization": f"Bearer {secret}"},
        "prefix": {"authorization": secret[:-1]},
    }[scheme]
    resp = requests.get(sandbox.url + "/api/portal/requests", headers=headers, timeout=5)
    assert resp.status_code == 401
    assert resp.json() == error("Not authorised")


def test_control_api_requires_the_secret_too(sandbox):
    resp = requests.post(sandbox.url + "/_sandbox/reset", timeout=5)
    assert resp.status_code == 401
    assert resp.json() == error("Not authorised")


def test_unknown_path_is_404_and_wrong_method_is_405_in_the_envelope(sandbox):
    resp = get(sandbox, "/api/portal/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["Status"] == "Error"
    resp = requests.patch(sandbox.url + "/api/portal/requests", headers=auth(sandbox), timeout=5)
    assert resp.status_code == 405
    assert resp.json()["Status"] == "Error"
    assert "GET" in resp.headers["Allow"]


def test_create_app_requires_a_secret():
    with pytest.raises(ValueError, match="secret"):
        create_app(secret="")


# ----- key requests: list, get --------------------------------------------------------


def test_list_pages_by_ten_and_negative_page_returns_all(sandbox):
    ids = [pending(sandbox, developer=BOB, policies=[FREE]) for _ in range(14)]
    everything = ["64b000000000000000000101", *ids]  # the seeded approved request comes first

    first = get(sandbox, "/api/portal/requests", params={"p": 1}).json()
    second = get(sandbox, "/api/portal/requests", params={"p": 2}).json()
    assert first["Pages"] == second["Pages"] == 2
    assert [r["id"] for r in first["Data"]] == everything[:10]
    assert [r["id"] for r in second["Data"]] == everything[10:]
    assert get(sandbox, "/api/portal/requests", params={"p": 3}).json()["Data"] == []
    assert get(sandbox, "/api/portal/requests").json()["Data"] == first["Data"]
    assert get(sandbox, "/api/portal/requests", params={"p": 0}).json()["Data"] == first["Data"]
    for p in (-1, -7):
        every = get(sandbox, "/api/portal/requests", params={"p": p}).json()
        assert [r["id"] for r in every["Data"]] == everything


def test_list_filters_by_approved(sandbox):
    waiting = pending(sandbox)
    open_ = get(sandbox, "/api/portal/requests", params={"approved": "false", "p": -1}).json()
    done = get(sandbox, "/api/portal/requests", params={"approved": "true", "p": -1}).json()
    assert [r["id"] for r in open_["Data"]] == [waiting]
    assert [r["id"] for r in done["Data"]] == ["64b000000000000000000101"]


def test_get_returns_the_full_request_with_embedded_developer_and_catalogue(sandbox):
    rid = pending(sandbox, developer="alice@acme.partner.example", policies=[PRO, BASIC],
                  fields={"company": "Acme Inc", "use_case": "payments"})  # fmt: skip
    resp = get(sandbox, f"/api/portal/requests/{rid}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == rid
    assert body["org_id"] == ORG
    assert body["by_user"] == ALICE
    assert body["apply_policies"] == [PRO, BASIC]
    assert body["for_plan"] == PRO
    assert body["version"] == "v2"
    assert body["approved"] is False
    assert body["fields"] == {"company": "Acme Inc", "use_case": "payments"}
    for name in ("for_api", "jwt_secret", "certificate"):
        assert body[name] == ""
    assert "key" not in body and "remove_policies" not in body  # in no recorded answer
    assert body["oauth_info"] == {"redirect_uri": ""}
    assert body["date_created"].endswith("Z")
    assert body["portal_developer"]["email"] == "alice@acme.partner.example"
    assert body["portal_developer"]["fields"]["company"] == "Acme Inc"
    assert body["catalogue_entry"]["policy_id"] == PRO
    assert body["catalogue_entry"]["auth_type"] == "authToken"
    assert [c["policy_id"] for c in body["catalogues"]] == [PRO, BASIC]


def test_get_unknown_is_404_and_malformed_id_is_400(sandbox):
    resp = get(sandbox, f"/api/portal/requests/{UNKNOWN_ID}")
    assert resp.status_code == 404
    assert resp.json() == error("Could not retrieve portal object.")
    resp = get(sandbox, "/api/portal/requests/not-an-id")
    assert resp.status_code == 400
    assert resp.json() == error("Invalid key request ID.")


# ----- key requests: create ------------------------------------------------------------


def test_post_creates_a_request_and_answers_its_id(sandbox):
    body = {"by_user": CAROL, "apply_policies": [FREE], "for_plan": FREE, "version": "v2",
            "fields": {"company": "Chen"}, "date_created": "2026-04-01T10:00:00Z",
            "approved": False}  # fmt: skip
    resp = post(sandbox, "/api/portal/requests", json=body)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["Status"] == "OK" and answer["Meta"] is None
    stored = get(sandbox, f"/api/portal/requests/{answer['Message']}").json()
    assert stored["by_user"] == CAROL
    assert stored["fields"] == {"company": "Chen"}
    assert stored["date_created"] == "2026-04-01T10:00:00Z"
    assert stored["portal_developer"]["email"] == "carol@gmail.com"


def test_post_without_date_stores_go_zero_time(sandbox):
    rid = post(sandbox, "/api/portal/requests", json={"by_user": BOB, "apply_policies": [FREE]})
    stored = sandbox.app.sandbox.get_key_request(rid.json()["Message"])
    assert stored["date_created"] == "0001-01-01T00:00:00Z"
    assert stored["for_plan"] == FREE


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'{"apply_policies": "x"}'])
def test_post_with_malformed_body_is_403(sandbox, data):
    resp = post(sandbox, "/api/portal/requests", data=data)
    assert resp.status_code == 403
    assert resp.json() == error("Request body malformed.")


def test_created_as_approved_cannot_be_approved_later(sandbox):
    body = {"by_user": BOB, "apply_policies": [FREE], "approved": True}
    rid = post(sandbox, "/api/portal/requests", json=body).json()["Message"]
    resp = put(sandbox, f"/api/portal/requests/approve/{rid}")
    assert resp.status_code == 400
    assert resp.json() == error("Key request has already been processed.")
    assert sandbox.app.sandbox.developer(BOB)["keys"] == {}


# ----- key requests: approve, delete ---------------------------------------------------


def test_approve_returns_raw_key_and_records_its_hash_on_the_developer(sandbox):
    rid = pending(sandbox, developer=ALICE, policies=[PRO, ENTERPRISE])
    resp = put(sandbox, f"/api/portal/requests/approve/{rid}")
    assert resp.status_code == 200
    creds = resp.json()
    assert set(creds) == {"RawKey", "Password"}
    assert creds["Password"] == ""
    assert len(creds["RawKey"]) > 24

    dev = get(sandbox, f"/api/portal/developers/{ALICE}").json()
    assert len(dev["keys"]) == 1
    (key_id, policies), = dev["keys"].items()  # fmt: skip
    assert policies == [PRO, ENTERPRISE]
    assert dev["subscriptions"] == {PRO: key_id, ENTERPRISE: key_id}
    # The Dashboard's hash_keys is on by default: the developer record holds a hash, never
    # the raw key, though the portal configuration says HashKeys false (as Tyk's samples).
    assert key_id != creds["RawKey"]
    assert creds["RawKey"] not in json.dumps(dev)
    assert get(sandbox, f"/api/portal/requests/{rid}").json()["approved"] is True
    assert sandbox.app.sandbox.key(key_id)["active"] is True
    assert sandbox.app.sandbox.key(key_id)["developer_id"] == ALICE


def test_second_approve_is_refused_with_tyks_message(sandbox):
    rid = pending(sandbox)
    first = put(sandbox, f"/api/portal/requests/approve/{rid}")
    again = put(sandbox, f"/api/portal/requests/approve/{rid}")
    assert first.status_code == 200
    assert again.status_code == 400
    assert again.json() == {
        "Status": "Error",
        "Message": "Key request has already been processed.",
        "Meta": None,
    }
    assert len(sandbox.app.sandbox.developer(ALICE)["keys"]) == 1


def test_each_approval_issues_a_different_key(sandbox):
    keys = {put(sandbox, f"/api/portal/requests/approve/{pending(sandbox)}").json()["RawKey"]
            for _ in range(3)}  # fmt: skip
    assert len(keys) == 3
    assert len(sandbox.app.sandbox.developer(ALICE)["keys"]) == 3


def test_approve_without_hashing_records_the_raw_key(sandbox):
    sandbox.app.sandbox.set_mode("hash_keys", False)  # the Dashboard's setting, not HashKeys
    rid = pending(sandbox)
    raw = put(sandbox, f"/api/portal/requests/approve/{rid}").json()["RawKey"]
    assert sandbox.app.sandbox.developer(ALICE)["keys"] == {raw: [PRO]}
    assert get(sandbox, "/api/portal/configuration").json()["HashKeys"] is False


def test_hashing_follows_the_dashboard_setting_not_the_portal_configuration(sandbox):
    assert get(sandbox, "/api/portal/configuration").json()["HashKeys"] is False
    rid = pending(sandbox)
    raw = put(sandbox, f"/api/portal/requests/approve/{rid}").json()["RawKey"]
    assert raw not in sandbox.app.sandbox.developer(ALICE)["keys"]
    assert sandbox.app.sandbox.modes()["hash_keys"] is True


def test_approve_basic_auth_answers_username_and_password(sandbox):
    rid = pending(sandbox, developer=ERIN, policies=[BASIC])
    creds = put(sandbox, f"/api/portal/requests/approve/{rid}").json()
    assert creds["RawKey"].startswith("erin-")
    assert len(creds["Password"]) >= 12
    dev = sandbox.app.sandbox.developer(ERIN)
    assert list(dev["subscriptions"]) == [BASIC]


def test_approve_oauth_creates_a_client_for_the_developer(sandbox):
    body = {"by_user": CAROL, "apply_policies": [OAUTH],
            "oauth_info": {"redirect_uri": "https://carol.example/cb"}}  # fmt: skip
    rid = post(sandbox, "/api/portal/requests", json=body).json()["Message"]
    creds = put(sandbox, f"/api/portal/requests/approve/{rid}").json()
    assert set(creds) == {"client_id", "secret", "policy_id", "redirect_uri"}
    assert creds["policy_id"] == OAUTH
    assert creds["redirect_uri"] == "https://carol.example/cb"
    dev = sandbox.app.sandbox.developer(CAROL)
    assert [c["client_id"] for c in dev["oauth_clients"][OAUTH]] == [creds["client_id"]]
    assert dev["keys"] == {}


def test_approve_with_a_nonexistent_policy_is_refused_and_leaves_it_pending(sandbox):
    rid = post(sandbox, "/api/portal/requests",
               json={"by_user": BOB, "apply_policies": [UNKNOWN_ID]}).json()["Message"]  # fmt: skip
    resp = put(sandbox, f"/api/portal/requests/approve/{rid}")
    assert resp.status_code == 400
    assert UNKNOWN_ID in resp.json()["Message"]
    assert sandbox.app.sandbox.get_key_request(rid)["approved"] is False


def test_approve_unknown_is_404(sandbox):
    resp = put(sandbox, f"/api/portal/requests/approve/{UNKNOWN_ID}")
    assert resp.status_code == 404
    assert resp.json() == error("Could not retrieve portal object.")


def test_delete_declines_then_the_request_is_gone(sandbox):
    rid = pending(sandbox)
    resp = delete(sandbox, f"/api/portal/requests/{rid}")
    assert resp.status_code == 200
    assert resp.json() == {"Status": "OK", "Message": "Data deleted", "Meta": None}
    assert get(sandbox, f"/api/portal/requests/{rid}").status_code == 404
    again = delete(sandbox, f"/api/portal/requests/{rid}")
    assert again.status_code == 404
    assert again.json() == error("Could not retrieve portal object.")


# ----- developers and keys -------------------------------------------------------------


def test_developers_list_get_and_by_email(sandbox):
    listed = get(sandbox, "/api/portal/developers", params={"p": -1}).json()
    emails = [d["email"] for d in listed["Data"]]
    assert emails == ["alice@acme.partner.example", "bob@mailinator.com", "carol@gmail.com",
                      "dave@example.com", "erin@corp.example"]  # fmt: skip
    assert get(sandbox, f"/api/portal/developers/{ERIN}").json()["fields"]["company"] == "ACME Corp"
    by_email = get(sandbox, "/api/portal/developers/email/dave%40example.com")
    assert by_email.status_code == 200
    assert by_email.json()["id"] == DAVE
    # The one recorded by-email answer (2017) names the keys map `api_keys`: API -> key id.
    assert by_email.json()["api_keys"] == {"5d1b0a7ccb4b4e8f9c1f0a11": DAVE_KEY}
    missing = get(sandbox, "/api/portal/developers/email/nobody%40example.com")
    assert missing.status_code == 404
    assert get(sandbox, f"/api/portal/developers/{UNKNOWN_ID}").status_code == 404


def test_revoke_key_removes_it_from_developer_and_deactivates_it(sandbox):
    resp = delete(sandbox, f"/api/portal/developers/{DAVE}/keys/{DAVE_KEY}")
    assert resp.status_code == 200
    assert resp.json() == {"Status": "OK", "Message": "Key deleted successfully.", "Meta": None}
    dev = get(sandbox, f"/api/portal/developers/{DAVE}").json()
    assert dev["keys"] == {}
    assert dev["subscriptions"] == {}
    assert sandbox.app.sandbox.key(DAVE_KEY)["active"] is False
    again = delete(sandbox, f"/api/portal/developers/{DAVE}/keys/{DAVE_KEY}")
    assert again.status_code == 404


def test_revoke_a_key_the_developer_does_not_hold_is_404(sandbox):
    resp = delete(sandbox, f"/api/portal/developers/{ALICE}/keys/{DAVE_KEY}")
    assert resp.status_code == 404
    assert sandbox.app.sandbox.developer(DAVE)["keys"] == {DAVE_KEY: [FREE]}


def test_revoke_an_approved_key_by_its_hash(sandbox):
    rid = pending(sandbox, developer=CAROL, policies=[FREE])
    put(sandbox, f"/api/portal/requests/approve/{rid}")
    key_id = get(sandbox, f"/api/portal/developers/{CAROL}").json()["subscriptions"][FREE]
    assert delete(sandbox, f"/api/portal/developers/{CAROL}/keys/{key_id}").status_code == 200
    assert sandbox.app.sandbox.key(key_id)["active"] is False


# ----- policies, catalogue, configuration ----------------------------------------------


def test_policies_list_active_filter_and_get(sandbox):
    every = get(sandbox, "/api/portal/policies", params={"p": -1}).json()["Data"]
    active = get(sandbox, "/api/portal/policies", params={"p": -1, "active": "true"}).json()
    assert {p["id"] for p in every} == {FREE, PRO, ENTERPRISE, BASIC, OAUTH, LEGACY}
    assert LEGACY not in {p["id"] for p in active["Data"]}
    pro = get(sandbox, f"/api/portal/policies/{PRO}").json()
    assert pro["name"] == "Pro" and pro["tags"] == ["paid"] and pro["_id"] == PRO
    assert get(sandbox, f"/api/portal/policies/{FREE}").json()["tags"] == ["free"]
    bad = get(sandbox, "/api/portal/policies/pol-pro")
    assert bad.status_code == 400 and bad.json() == error("Invalid policy ID.")
    gone = get(sandbox, f"/api/portal/policies/{UNKNOWN_ID}")
    assert gone.status_code == 404 and gone.json() == error("Could not retrieve portal object.")


def test_catalogue_and_configuration(sandbox):
    catalogue = get(sandbox, "/api/portal/catalogue").json()
    assert set(catalogue) == {"id", "org_id", "apis", "email"}
    assert {e["policy_id"]: e["auth_type"] for e in catalogue["apis"]} == {
        FREE: "authToken", PRO: "authToken", ENTERPRISE: "authToken",
        BASIC: "basic", OAUTH: "oauth",
    }  # fmt: skip
    config = get(sandbox, "/api/portal/configuration").json()
    assert config["HashKeys"] is False  # as Tyk's samples show it beside hashed key ids
    assert config["require_key_approval"] is True
    assert config["key_request_fields"] == ["company", "use_case"]
    assert config["org_id"] == ORG


# ----- faults and call log -------------------------------------------------------------


def test_status_fault_hits_n_matching_calls_then_normal_service_resumes(sandbox):
    sandbox.app.sandbox.add_fault("GET", "/api/portal/requests", status=503, times=2)
    statuses = [get(sandbox, "/api/portal/requests").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    sandbox.app.sandbox.add_fault("PUT", "/api/portal/requests/approve/", status=500)
    faulted = put(sandbox, f"/api/portal/requests/approve/{pending(sandbox)}")
    assert faulted.status_code == 500
    assert faulted.json()["Status"] == "Error"


def test_fault_matches_method_and_path_prefix_only(sandbox):
    sandbox.app.sandbox.add_fault("DELETE", "/api/portal/requests/", status=500)
    assert get(sandbox, "/api/portal/requests").status_code == 200
    assert get(sandbox, "/api/portal/developers").status_code == 200
    assert delete(sandbox, f"/api/portal/requests/{UNKNOWN_ID}").status_code == 500
    assert delete(sandbox, f"/api/portal/requests/{UNKNOWN_ID}").status_code == 404


def test_faulted_approve_issues_no_key(sandbox):
    rid = pending(sandbox)
    sandbox.app.sandbox.add_fault("PUT", "/api/portal/requests/approve", status=502)
    assert put(sandbox, f"/api/portal/requests/approve/{rid}").status_code == 502
    assert sandbox.app.sandbox.developer(ALICE)["keys"] == {}
    assert put(sandbox, f"/api/portal/requests/approve/{rid}").status_code == 200


def test_hang_fault_delays_then_answers_normally(sandbox):
    sandbox.app.sandbox.add_fault("GET", "/api/portal/configuration", hang=0.4)
    started = time.monotonic()
    slow = get(sandbox, "/api/portal/configuration")
    took = time.monotonic() - started
    assert slow.status_code == 200 and slow.json()["HashKeys"] is False
    assert took >= 0.4
    # A hang longer than the client's timeout looks like an unresponsive Dashboard.
    sandbox.app.sandbox.add_fault("GET", "/api/portal/configuration", hang=0.6)
    with pytest.raises(requests.Timeout):
        requests.get(sandbox.url + "/api/portal/configuration", headers=auth(sandbox), timeout=0.1)
    assert sandbox.app.sandbox.faults() == []  # both hangs were used up
    assert get(sandbox, "/api/portal/configuration").status_code == 200


def test_clear_faults_disarms_everything(sandbox):
    sandbox.app.sandbox.add_fault(None, "/api/", status=500, times=None)
    assert get(sandbox, "/api/portal/catalogue").status_code == 500
    assert get(sandbox, "/api/portal/catalogue").status_code == 500
    sandbox.app.sandbox.clear_faults()
    assert get(sandbox, "/api/portal/catalogue").status_code == 200


def test_bad_fault_is_refused(sandbox):
    with pytest.raises(ValueError, match="status or hang"):
        sandbox.app.sandbox.add_fault("GET", "/api/")


def test_call_log_records_calls_without_the_secret(sandbox):
    get(sandbox, "/api/portal/requests", params={"approved": "false", "p": "-1"})
    put(sandbox, f"/api/portal/requests/approve/{UNKNOWN_ID}")
    requests.get(sandbox.url + "/api/portal/catalogue", timeout=5)
    calls = sandbox.app.sandbox.calls()
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("GET", "/api/portal/requests", 200),
        ("PUT", f"/api/portal/requests/approve/{UNKNOWN_ID}", 404),
        ("GET", "/api/portal/catalogue", 401),
    ]
    assert calls[0]["query"] == {"approved": "false", "p": "-1"}
    assert [c["seq"] for c in calls] == sorted(c["seq"] for c in calls)
    assert all(isinstance(c["at"], float) for c in calls)
    assert auth(sandbox)["authorization"] not in json.dumps(calls)
    assert [c["path"] for c in sandbox.app.sandbox.calls(method="put")] == [
        f"/api/portal/requests/approve/{UNKNOWN_ID}"
    ]
    assert len(sandbox.app.sandbox.calls(path="/api/portal/requests")) == 2
    sandbox.app.sandbox.clear_calls()
    assert sandbox.app.sandbox.calls() == []


# ----- webhook -------------------------------------------------------------------------


def test_new_key_request_fires_the_webhook_like_tyk(sandbox, receiver):
    url, got = receiver
    sandbox.app.sandbox.set_webhook_url(url)
    rid = pending(sandbox, developer=BOB, policies=[PRO], fields={"company": "Burner"})
    method, headers, body = got.get(timeout=5)
    assert method == "POST"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Tyk-Hookshot"
    event = json.loads(body)
    assert event["event"] == "key_request_event.submitted"
    assert event["data"]["id"] == rid
    assert event["data"]["apply_policies"] == [PRO]
    assert event["data"]["portal_developer"]["email"] == "bob@mailinator.com"
    assert event["data"]["catalogue_entry"]["policy_id"] == PRO


def test_api_created_request_fires_the_webhook_too(receiver):
    url, got = receiver
    with serve(create_app(secret=SECRET, webhook_url=url)) as server:
        rid = post(server, "/api/portal/requests",
                   json={"by_user": CAROL, "apply_policies": [FREE]}).json()["Message"]  # fmt: skip
        _, _, body = got.get(timeout=5)
        assert json.loads(body)["data"]["id"] == rid
        assert json.loads(body)["data"]["by_user"] == CAROL


def test_unreachable_webhook_does_not_break_creation(sandbox, caplog):
    sandbox.app.sandbox.set_webhook_url("http://127.0.0.1:9/hook")  # discard port: refused
    created = sandbox.app.sandbox.create_key_request(ALICE, [FREE])
    assert sandbox.app.sandbox.get_key_request(created["id"]) is not None
    deadline = time.monotonic() + 5
    while "webhook" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "sandbox webhook" in caplog.text


def test_no_webhook_without_url(sandbox, receiver):
    _, got = receiver
    pending(sandbox)
    time.sleep(0.2)
    assert got.empty()


# ----- control API over HTTP -----------------------------------------------------------


def test_control_api_drives_the_sandbox_from_another_process(sandbox, receiver):
    url, got = receiver
    assert put(sandbox, "/_sandbox/webhook", json={"url": url}).json() == {"url": url}

    made = post(sandbox, "/_sandbox/key-requests",
                json={"developer": "erin@corp.example", "policies": [ENTERPRISE],
                      "fields": {"company": "ACME Corp"}})  # fmt: skip
    assert made.status_code == 201
    created = made.json()
    assert created["by_user"] == ERIN and created["fields"] == {"company": "ACME Corp"}
    assert json.loads(got.get(timeout=5)[2])["data"]["id"] == created["id"]

    spec = {"method": "GET", "path": "/api/portal/requests/", "status": 500, "times": 1}
    fault = post(sandbox, "/_sandbox/faults", json=spec)
    assert fault.status_code == 201
    assert get(sandbox, f"/api/portal/requests/{created['id']}").status_code == 500
    assert get(sandbox, f"/api/portal/requests/{created['id']}").status_code == 200

    post(sandbox, "/_sandbox/faults", json={"method": "GET", "path": "/api/", "status": 500})
    assert delete(sandbox, "/_sandbox/faults").status_code == 200
    assert get(sandbox, "/api/portal/catalogue").status_code == 200

    calls = get(sandbox, "/_sandbox/calls", params={"path": "/api/portal/requests/"}).json()
    assert [c["status"] for c in calls["calls"]] == [500, 200]
    assert all(not c["path"].startswith("/_sandbox") for c in sandbox.app.sandbox.calls())
    assert delete(sandbox, "/_sandbox/calls").status_code == 200
    assert get(sandbox, "/_sandbox/calls").json() == {"calls": []}


def test_control_api_rejects_bad_input(sandbox):
    bad_fault = post(sandbox, "/_sandbox/faults", json={"path": "/api/", "status": "oops"})
    assert bad_fault.status_code == 400
    nobody = post(sandbox, "/_sandbox/key-requests",
                  json={"developer": "nobody@example.com", "policies": [FREE]})  # fmt: skip
    assert nobody.status_code == 404
    no_policies = post(sandbox, "/_sandbox/key-requests", json={"developer": ALICE})
    assert no_policies.status_code == 400
    assert post(sandbox, "/_sandbox/faults", data=b"[]").status_code == 400


def test_reset_restores_the_seed(sandbox):
    rid = pending(sandbox)
    put(sandbox, f"/api/portal/requests/approve/{rid}")
    delete(sandbox, f"/api/portal/developers/{DAVE}/keys/{DAVE_KEY}")
    sandbox.app.sandbox.add_fault("GET", "/api/", status=500)
    assert post(sandbox, "/_sandbox/reset").status_code == 200
    assert get(sandbox, f"/api/portal/requests/{rid}").status_code == 404
    assert get(sandbox, f"/api/portal/developers/{ALICE}").json()["keys"] == {}
    assert get(sandbox, f"/api/portal/developers/{DAVE}").json()["keys"] == {DAVE_KEY: [FREE]}
    # The fault and the call log were cleared too: of the calls above, only the three reads
    # after the reset are logged (the session's sandbox may log others' stray reads too).
    mine = ("/api/portal/requests/", f"/api/portal/developers/{ALICE}",
            f"/api/portal/developers/{DAVE}")
    logged = [(c["method"], c["status"]) for c in sandbox.app.sandbox.calls()
              if c["path"].startswith(mine)]
    assert logged == [("GET", 404), ("GET", 200), ("GET", 200)]


# ----- Python API ----------------------------------------------------------------------


def test_python_api_exposes_state_and_seed_choices(tmp_path):
    state = Sandbox()
    assert state.developer("carol@gmail.com")["id"] == CAROL
    assert state.developer(UNKNOWN_ID) is None
    assert state.get_key_request(UNKNOWN_ID) is None
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"org_id": "0" * 24, "developers": [
        {"id": "1" * 24, "email": "x@y.example"}]}))  # fmt: skip
    app = create_app(secret="s", seed=str(seed_file))
    assert app.sandbox is app.extensions["sandbox"]
    assert app.sandbox.developer("x@y.example")["org_id"] == "0" * 24
    assert app.sandbox.developer("x@y.example")["keys"] == {}


def test_new_ids_are_24_hex_and_unique():
    ids = {new_object_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_concurrent_approvals_issue_exactly_one_key(sandbox):
    rid = pending(sandbox)
    with requests.Session() as s1, requests.Session() as s2:
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda s=s: results.append(
                s.put(f"{sandbox.url}/api/portal/requests/approve/{rid}", headers=auth(sandbox),
                      timeout=5).status_code))
            for s in (s1, s2, s1, s2)
        ]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [200, 400, 400, 400]
    assert len(sandbox.app.sandbox.developer(ALICE)["keys"]) == 1
