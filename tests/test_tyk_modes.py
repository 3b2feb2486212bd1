"""The service against the sandbox in its Tyk-faithful modes: keys not hashed, OAuth clients,
secure key approval, a withheld Dashboard right (docs/tyk-compatibility.md)."""

from __future__ import annotations

import json
import logging

import pytest

from approver import cli
from approver import state as st
from approver.pipeline import billing, health
from approver.pipeline.sources import PENDING_KEY, RevocationFailed, fingerprint
from approver.tyk import DeleteByHashRefused
from approver.web import create_app
from tests.conftest import WEBHOOK_TOKEN

ALICE, DAVE = "alice@acme.partner.example", "dave@example.com"
ALICE_ID, DAVE_ID = "64b0000000000000000000a1", "64b0000000000000000000a4"
FREE, BASIC, OAUTH = "64b0000000000000000000b1", "64b0000000000000000000b4", \
    "64b0000000000000000000b5"
DAVE_OLD_KEY = "5d0c6b1e7a9f3c24"  # seeded: Dave's Free key, from before this service


@pytest.fixture
def settings(settings):
    # Revocation here covers every policy these tests approve.
    return settings.with_(paid_policy_tags=("free", "partner"))


def decide(client, work, sandbox, email, policy):
    """A developer asks, Tyk's webhook arrives, a worker decides; the stored request."""
    request = sandbox.app.sandbox.create_key_request(email, [policy], {"use_case": "tests"})
    body = {"event": "key_request_event.submitted", "data": request}
    assert client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body).status_code == 202
    work()
    return request


def redis_dump(rt) -> str:
    """Every key and value in Redis, as text."""
    read = {"string": rt.redis.get, "hash": rt.redis.hgetall, "set": rt.redis.smembers,
            "list": lambda k: rt.redis.lrange(k, 0, -1), "stream": rt.redis.xrange,
            "zset": lambda k: rt.redis.zrange(k, 0, -1, withscores=True)}
    return "\n".join(f"{key!r} {read.get(rt.redis.type(key).decode(), str)(key)!r}"
                     for key in rt.redis.scan_iter(count=1000))


def test_with_key_hashing_off_no_key_is_stored_logged_or_exported(
        client, work, rt, sandbox, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    tyk = sandbox.app.sandbox
    tyk.set_mode("hash_keys", False)  # the developer record then holds the keys themselves
    for policy in (FREE, BASIC, OAUTH):
        decide(client, work, sandbox, ALICE, policy)
    developer = tyk.developer(ALICE_ID)
    assert len(developer["keys"]) == 2 and list(developer["oauth_clients"]) == [OAUTH]
    issued = tyk.keys()  # the sandbox's key store (not a dict)
    raw_keys = [k["key_id"] for k in issued if k["auth_type"] != "oauth"]
    revoked = billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")
    issued = tyk.keys()
    assert len(revoked) == 3 and not any(k["active"] for k in issued
                                         if k["developer_id"] == ALICE_ID)
    assert cli.main(["decisions", "export"]) == 0
    export = capsys.readouterr().out
    secrets = [*tyk.issued_secrets(), *raw_keys]
    assert len(secrets) >= 5
    places = {"redis": redis_dump(rt), "logs": caplog.text, "export": export,
              "decision log": json.dumps(rt.store.entries(1000))}
    for where, text in places.items():
        leaked = [s[:6] for s in secrets if s in text]
        assert leaked == [], f"keys found in the {where}"


def test_an_oauth_client_is_revoked_through_the_oauth_endpoint(client, work, rt, sandbox):
    tyk = sandbox.app.sandbox
    decide(client, work, sandbox, ALICE, OAUTH)
    (client_id,) = [c["client_id"] for c in tyk.developer(ALICE_ID)["oauth_clients"][OAUTH]]
    assert list(rt.store.approved_keys(ALICE_ID)) == [fingerprint(client_id)]
    assert billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled") == [
        fingerprint(client_id)]
    assert tyk.key(client_id)["active"] is False
    assert tyk.developer(ALICE_ID)["oauth_clients"] == {}
    assert [c["path"] for c in tyk.calls("DELETE")] == [
        f"/api/portal/developers/oauth/{client_id}"]


def test_a_404_from_a_revocation_endpoint_is_never_counted_as_revoked(client, work, rt,
                                                                      sandbox):
    tyk = sandbox.app.sandbox
    decide(client, work, sandbox, ALICE, OAUTH)
    tyk.add_fault("DELETE", "/api/portal/developers/oauth/", status=404)
    with pytest.raises(RevocationFailed):
        billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")
    (about,) = rt.store.approved_keys(ALICE_ID).values()
    assert "revoked_at" not in about
    assert billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")  # next time


def test_secure_key_approval_records_no_older_key_and_revokes_the_generated_one(
        client, work, rt, sandbox):
    tyk = sandbox.app.sandbox
    tyk.set_mode("secure_key_approval", True)
    request = decide(client, work, sandbox, DAVE, FREE)
    state = rt.store.state(request["id"])
    assert (state["state"], state["outcome"]) == (st.APPLIED, "approve")
    # Approved, but the key exists only once Dave asks for it: none yet, never his old one.
    assert state["key_ids"] == [] and state["key_pending"] == "True"
    assert list(tyk.developer(DAVE_ID)["keys"]) == [DAVE_OLD_KEY]
    assert list(rt.store.approved_keys(DAVE_ID)) == [PENDING_KEY + request["id"]]
    # Revoked before it was generated: nothing to revoke yet, and the record stays.
    assert billing.revoke_paid_keys(rt, DAVE_ID, reason="billing canceled") == []
    assert "revoked_at" not in rt.store.approved_keys(DAVE_ID)[PENDING_KEY + request["id"]]
    new_key = tyk.generate_key(request["id"])
    assert billing.revoke_paid_keys(rt, DAVE_ID, reason="billing canceled") == [
        PENDING_KEY + request["id"]]
    assert tyk.key(new_key)["active"] is False
    assert tyk.key(DAVE_OLD_KEY)["active"] is True  # not ours: left alone
    assert billing.revoke_paid_keys(rt, DAVE_ID, reason="billing canceled") == []


def test_a_new_key_is_told_apart_from_older_ones_without_secure_approval(client, work, rt,
                                                                        sandbox):
    tyk = sandbox.app.sandbox
    request = decide(client, work, sandbox, DAVE, FREE)
    (new_key,) = set(tyk.developer(DAVE_ID)["keys"]) - {DAVE_OLD_KEY}
    assert rt.store.state(request["id"])["key_ids"] == [fingerprint(new_key)]
    assert billing.revoke_paid_keys(rt, DAVE_ID, reason="billing canceled") == [
        fingerprint(new_key)]
    assert tyk.key(DAVE_OLD_KEY)["active"] is True


def internal_readyz(app) -> dict:
    """/readyz as the internal listener answers it (the details are served only there)."""
    inside = create_app(app.extensions["approver"].settings.with_(internal_bind="127.0.0.1:9100"))
    return inside.test_client().get("/readyz", base_url="http://localhost:9100").json


def test_a_withheld_policy_right_is_named_in_health_status_and_the_worker_log(
        client, work, rt, sandbox, app, capsys, caplog):
    tyk = sandbox.app.sandbox
    tyk.withheld_rights = {"policy"}
    caplog.set_level(logging.ERROR)
    decide(client, work, sandbox, ALICE, FREE)
    assert "Dashboard refused GET /api/portal/policies/" in caplog.text
    assert "grant the API user 'policy: read'" in caplog.text
    # The decision could not be made: nothing decided, the job is retried.
    assert rt.store.state(tyk.key_requests()[0]["id"]) is None
    health.publish_health(rt)
    ready = internal_readyz(app)
    assert ready["status"] == "degraded"
    assert "lacks the right 'policy: read'" in ready["dashboard"]
    assert cli.main(["status", "--json"]) == 0
    assert "lacks the right 'policy: read'" in json.loads(capsys.readouterr().out)["dashboard"]


def test_a_write_refused_for_lack_of_rights_shows_in_health(client, work, rt, sandbox, app):
    tyk = sandbox.app.sandbox
    tyk.add_fault("PUT", "/api/portal/requests/approve/", status=403, times=10,
                  message="access denied: You do not have permission to access  /api/portal")
    decide(client, work, sandbox, ALICE, FREE)
    health.publish_health(rt)
    dashboard = internal_readyz(app)["dashboard"]
    assert "classic: PUT /api/portal/requests/approve/{id} refused (HTTP 403)" in dashboard
    assert "lacks the right 'portal: write'" in dashboard


def test_the_documented_least_rights_cover_every_call_the_service_makes(client, work, rt,
                                                                       sandbox):
    from approver.pipeline import reconcile
    from approver.tyk.permissions import right_for

    tyk = sandbox.app.sandbox
    tyk.withheld_rights = {"keys", "apis", "analytics", "hooks", "system", "users"}
    for email, policy in ((ALICE, FREE), (ALICE, OAUTH), ("bob@mailinator.com", FREE)):
        decide(client, work, sandbox, email, policy)
    reconcile.run(rt)
    health.publish_health(rt)
    billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")
    calls = tyk.calls()
    # A call refused for lack of rights answers 401 or 403 (the sandbox, as Tyk).
    refused = [(c["method"], c["path"], c["status"]) for c in calls
               if c["status"] in (401, 403)]
    assert calls and not refused, refused
    assert {right_for(c["method"], c["path"]) for c in calls} == {
        ("portal", "read"), ("portal", "write"), ("policy", "read")}


def test_a_delete_by_hash_refused_by_tyk_is_named_and_never_counted_as_revoked(
        client, work, rt, sandbox):
    tyk = sandbox.app.sandbox
    tyk.set_mode("enable_delete_key_by_hash", False)  # hash_keys is on
    decide(client, work, sandbox, ALICE, FREE)
    with pytest.raises(DeleteByHashRefused, match="enable `enable_delete_key_by_hash`"):
        billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")
    (about,) = rt.store.approved_keys(ALICE_ID).values()
    assert "revoked_at" not in about
    issued = tyk.keys()  # the sandbox's key store (not a dict)
    assert all(k["active"] for k in issued if k["developer_id"] == ALICE_ID)
    tyk.set_mode("enable_delete_key_by_hash", True)
    assert len(billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")) == 1


@pytest.mark.parametrize("policy", [FREE, OAUTH])
def test_a_revocation_answered_done_while_the_key_stays_is_not_recorded(
        client, work, rt, sandbox, policy):
    tyk = sandbox.app.sandbox
    decide(client, work, sandbox, ALICE, policy)
    # A delete answered done whose key stays: as a hybrid Gateway that restores a revoked
    # session (liip/wp-tyk-dev-portal#6). The developer is read back after revoking.
    tyk.set_mode("revocation", "lost")
    with pytest.raises(RevocationFailed, match="still holds"):
        billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")
    (about,) = rt.store.approved_keys(ALICE_ID).values()
    assert "revoked_at" not in about
    tyk.set_mode("revocation", "applied")
    assert len(billing.revoke_paid_keys(rt, ALICE_ID, reason="billing canceled")) == 1
    assert "revoked_at" in next(iter(rt.store.approved_keys(ALICE_ID).values()))


def test_hashing_follows_the_dashboards_switch_not_the_portal_configuration(
        client, work, rt, sandbox):
    tyk = sandbox.app.sandbox
    assert tyk.configuration()["HashKeys"] is False  # as Tyk's samples show it
    decide(client, work, sandbox, ALICE, FREE)
    (key_id,) = tyk.developer(ALICE)["keys"]
    assert key_id not in tyk.issued_secrets()  # the record holds a hash: hash_keys is on
