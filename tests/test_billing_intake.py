"""The billing intake: every answer, replays, and what lands on the queue."""

import base64
import hashlib
import hmac
import io
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from approver.state.billing import BillingState
from approver.web import billing as billing_web
from approver.web import create_app

SECRET = "whsec_" + base64.b64encode(b"intake-secret-one-0123456789abcd").decode()
OTHER = "whsec_" + base64.b64encode(b"intake-secret-two-0123456789abcd").decode()
STRIPE_SECRET = "whsec_stripeIntakeSecret0123456789abcd"
DEVELOPER = "5e430ef68131890001b83d2e"
STATUS = {
    "type": "billing.status",
    "data": {"developer_id": DEVELOPER, "status": "active", "plan": "pro",
             "occurred_at": "2026-11-23T10:00:00Z"},
}
DECISION = {
    "type": "key_request.decision",
    "data": {"key_request_id": "5e543dd0f56e1a4affdd7acd", "decision": "deny",
             "reason": "unpaid invoice 123"},
}
SUBSCRIPTION = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "object": "event",
    "type": "customer.subscription.updated",
    "created": 1_795_000_000,
    "livemode": False,
    "data": {"object": {
        "id": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
        "object": "subscription",
        "status": "past_due",
        "metadata": {"tyk_developer_id": DEVELOPER},
        "items": {"object": "list", "data": [
            {"id": "si_1", "price": {"id": "price_1", "nickname": "Pro monthly",
                                     "lookup_key": "pro"}},
        ]},
    }},
}


def make_client(settings, **secrets):
    """A test client of the web app with the billing blueprint on."""
    app = create_app(settings.with_(**secrets))
    if "billing" not in app.blueprints:
        app.register_blueprint(billing_web.bp)
    return app.test_client()


@pytest.fixture
def client(settings):
    return make_client(settings, billing_secrets=(SECRET,), stripe_secrets=(STRIPE_SECRET,))


def standard_headers(body: bytes, secret=SECRET, msg_id=None, at=None) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(int(time.time()) if at is None else at, UTC)
    timestamp = str(int(moment.timestamp()))
    try:
        signature = Webhook(secret).sign(msg_id, moment, body.decode())
    except UnicodeDecodeError:
        # The reference library signs text only; the spec signs the raw bytes.
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
        signature = "v1," + base64.b64encode(digest.digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def stripe_headers(body: bytes, secret=STRIPE_SECRET, at=None) -> dict:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={digest}"}


def encode(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return (body if isinstance(body, str) else json.dumps(body)).encode()


def post(client, body=STATUS, headers=None, content_type="application/json", **sign):
    raw = encode(body)
    if headers is None:
        headers = standard_headers(raw, **sign)
    return client.post("/billing/events", data=raw, headers=headers, content_type=content_type)


def post_stripe(client, body=SUBSCRIPTION, **sign):
    raw = encode(body)
    return post(client, raw, headers=stripe_headers(raw, **sign))


def jobs(rt):
    return [rt.queue.fetch_job(job_id) for job_id in rt.queue.get_job_ids()]


def test_billing_status_is_queued_with_the_normalized_event(client, rt):
    response = post(client, msg_id="msg_one")
    assert response.status_code == 202
    assert response.json == {"status": "queued", "event_id": "msg_one"}
    [job] = jobs(rt)
    assert job.func_name == "approver.jobs.billing_event"
    assert job.id == "billing-" + hashlib.sha256(b"msg_one").hexdigest()[:40]
    assert job.args == [{
        "id": "msg_one", "type": "billing.status", "source": "standard",
        "data": {"developer_id": DEVELOPER, "status": "active", "plan": "pro",
                 "occurred_at": "2026-11-23T10:00:00Z"},
    }]
    assert job.result_ttl == 7 * 86400
    assert job.retries_left == len(rt.settings.retry_delays)
    assert list(job.retry_intervals) == list(rt.settings.retry_delays)


def test_key_request_decision_is_queued(client, rt):
    response = post(client, DECISION, msg_id="msg_decision")
    assert response.status_code == 202
    [job] = jobs(rt)
    assert job.args == [{"id": "msg_decision", "source": "standard", **DECISION}]


def test_developer_email_and_offsets_are_normalized(client, rt):
    body = {"type": "billing.status", "data": {
        "developer_email": "dev@example.com", "status": "trialing",
        "occurred_at": "2026-11-23T12:00:00.250+02:00", "extra": "dropped"}}
    assert post(client, body, msg_id="msg_email").status_code == 202
    [job] = jobs(rt)
    assert job.args[0]["data"] == {
        "developer_email": "dev@example.com", "status": "trialing", "plan": None,
        "occurred_at": "2026-11-23T10:00:00.250000Z",
    }


def test_replayed_event_id_is_a_duplicate_and_queues_one_job(client, rt):
    assert post(client, msg_id="msg_again").json["status"] == "queued"
    # A sender's retry: same id, fresh timestamp and signature.
    response = post(client, msg_id="msg_again", at=int(time.time()) + 1)
    assert response.status_code == 202
    assert response.json == {"status": "duplicate", "event_id": "msg_again"}
    assert len(rt.queue.get_job_ids()) == 1


def test_queued_job_without_replay_mark_is_still_a_duplicate(client, rt):
    assert post(client, msg_id="msg_crash").status_code == 202
    # As if the web process died between enqueueing and marking the id seen.
    rt.redis.delete("approver:billing:seen:" + hashlib.sha256(b"msg_crash").hexdigest())
    response = post(client, msg_id="msg_crash")
    assert response.status_code == 202
    assert response.json["status"] == "duplicate"
    assert len(rt.queue.get_job_ids()) == 1


def test_accepted_event_is_marked_seen(client, rt):
    post(client, msg_id="msg_seen")
    assert BillingState(rt.redis).seen("msg_seen")


def test_unknown_event_type_is_ignored(client, rt):
    response = post(client, {"type": "invoice.created", "data": {"anything": 1}})
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "type": "invoice.created"}
    assert rt.queue.get_job_ids() == []


def test_billing_off_is_404(settings, rt):
    client = make_client(settings)
    response = post(client)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "billing_off"


def test_body_over_the_limit_is_413_before_the_signature(client, rt):
    body = encode({**STATUS, "pad": "x" * (64 * 1024)})
    response = post(client, body, headers={})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"


def test_chunked_body_over_the_limit_is_413(client, rt):
    body = encode({**STATUS, "pad": "x" * (64 * 1024)})
    response = client.post(
        "/billing/events", input_stream=io.BytesIO(body), content_type="application/json",
        headers={**standard_headers(body), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
    )
    assert response.status_code == 413
    assert rt.queue.get_job_ids() == []


@pytest.mark.parametrize("change", [
    lambda h: {},
    lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
    lambda h: {k: v for k, v in h.items() if k != "webhook-id"},
    lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"},
    lambda h: {**h, "webhook-id": "msg_forged"},
    lambda h: {**h, "webhook-signature": "v1,AAAA"},
    lambda h: {**h, "webhook-signature": "garbage"},
    lambda h: {**h, "webhook-timestamp": "1"},
])
def test_any_signature_problem_is_401(client, rt, change):
    raw = encode(STATUS)
    response = post(client, raw, headers=change(standard_headers(raw)))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "bad_signature"
    assert rt.queue.get_job_ids() == []


def test_wrong_secret_and_stale_timestamp_are_401(client, rt):
    assert post(client, secret=OTHER).status_code == 401
    assert post(client, at=int(time.time()) - 600).status_code == 401
    assert post(client, at=int(time.time()) + 600).status_code == 401
    assert rt.queue.get_job_ids() == []


def test_second_secret_is_accepted_while_rotating(settings, rt):
    client = make_client(settings, billing_secrets=(OTHER, SECRET))
    assert post(client).status_code == 202


def test_401_message_names_the_problem_without_secrets(client):
    response = post(client, secret=OTHER)
    message = response.json["error"]["message"]
    assert "no signature matches" in message
    assert SECRET not in message and OTHER not in message


def test_signature_is_checked_before_content_type(client, rt):
    raw = encode(STATUS)
    response = post(client, raw, headers={}, content_type="text/plain")
    assert response.status_code == 401


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "", "application/xml",
])
def test_signed_body_that_is_not_json_typed_is_415(client, rt, content_type):
    response = post(client, content_type=content_type)
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


def test_json_with_charset_and_plus_json_are_accepted(client, rt):
    assert post(client, content_type="application/json; charset=utf-8").status_code == 202
    assert post(client, content_type="application/webhook+json").status_code == 202


@pytest.mark.parametrize("body,code,says", [
    (b"{not json", "malformed_json", "not valid JSON"),
    (b"\xff\xfe", "malformed_json", "not valid JSON"),
    (b'{"type": "billing.status", "data": {"x": NaN}}', "malformed_json", "not valid JSON"),
    (b"[1, 2]", "bad_shape", "(top level)"),
    ({"data": {}}, "bad_shape", "type"),
    ({"type": "billing.status"}, "bad_shape", "data"),
    ({"type": "billing.status", "data": {**STATUS["data"], "status": "gold"}},
     "bad_shape", "data/status"),
    ({"type": "billing.status", "data": {"status": "active",
                                         "occurred_at": "2026-11-23T10:00:00Z"}},
     "bad_shape", "data"),
    ({"type": "billing.status", "data": {**STATUS["data"], "occurred_at": "yesterday"}},
     "bad_shape", "data/occurred_at"),
    ({"type": "billing.status", "data": {**STATUS["data"], "occurred_at": "2026-13-01T00:00:00Z"}},
     "bad_shape", "data/occurred_at"),
    ({"type": "billing.status", "data": {**STATUS["data"], "occurred_at": "2026-11-23T10:00:00"}},
     "bad_shape", "data/occurred_at"),
    ({"type": "billing.status", "data": {**STATUS["data"], "developer_id": "a:b"}},
     "bad_shape", "data/developer_id"),
    ({"type": "key_request.decision", "data": {"decision": "approve"}},
     "bad_shape", "data"),
    ({"type": "key_request.decision", "data": {**DECISION["data"], "decision": "maybe"}},
     "bad_shape", "data/decision"),
])
def test_bad_bodies_are_400_with_the_reason(client, rt, body, code, says):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == code
    assert says in response.json["error"]["message"]
    assert rt.queue.get_job_ids() == []


def test_redis_down_is_503(settings, rt):
    down = settings.with_(redis_url="redis://127.0.0.1:1/0")
    client = make_client(down, billing_secrets=(SECRET,))
    response = post(client)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
typed = st.fixed_dictionaries(
    {"type": st.sampled_from(["billing.status", "key_request.decision", "other"]),
     "data": st.dictionaries(
         st.sampled_from(["developer_id", "developer_email", "status", "plan", "occurred_at",
                          "key_request_id", "decision", "reason"]),
         json_values, max_size=8)},
)


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | typed | st.binary(max_size=64))
def test_bad_bodies_never_get_a_5xx(client, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert post(client, raw).status_code in (200, 202, 400)
    assert post_stripe(client, raw).status_code in (200, 202, 400)


# -- Stripe ------------------------------------------------------------------------------


def test_stripe_subscription_event_is_queued_as_billing_status(client, rt):
    response = post_stripe(client)
    assert response.status_code == 202
    assert response.json == {"status": "queued", "event_id": SUBSCRIPTION["id"]}
    [job] = jobs(rt)
    assert job.args == [{
        "id": SUBSCRIPTION["id"], "type": "billing.status", "source": "stripe",
        "data": {"developer_id": DEVELOPER, "status": "past_due", "plan": "pro",
                 "occurred_at": "2026-11-18T11:06:40Z"},
    }]


def test_stripe_redelivery_is_a_duplicate(client, rt):
    assert post_stripe(client).json["status"] == "queued"
    assert post_stripe(client, at=int(time.time()) + 2).json["status"] == "duplicate"
    assert len(rt.queue.get_job_ids()) == 1


def test_stripe_other_event_is_ignored(client, rt):
    response = post_stripe(client, {**SUBSCRIPTION, "type": "invoice.paid"})
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "type": "invoice.paid"}
    assert rt.queue.get_job_ids() == []


def test_stripe_subscription_without_developer_is_400(client, rt):
    body = json.loads(json.dumps(SUBSCRIPTION))
    body["data"]["object"]["metadata"] = {"other": "x"}
    response = post_stripe(client, body)
    assert response.status_code == 400
    assert "tyk_developer_id" in response.json["error"]["message"]


@pytest.mark.parametrize("sign", [{"secret": "whsec_wrongStripeSecret0123456789ab"},
                                  {"at": 1_000_000_000}])
def test_bad_stripe_signature_is_401(client, rt, sign):
    assert post_stripe(client, **sign).status_code == 401
    assert rt.queue.get_job_ids() == []


def test_stripe_tampered_body_is_401(client, rt):
    raw = encode(SUBSCRIPTION)
    headers = stripe_headers(raw)
    assert post(client, raw.replace(b"past_due", b"active__"), headers=headers).status_code == 401


def test_stripe_only_service_refuses_unsigned_and_standard_signed_events(settings, rt):
    client = make_client(settings, stripe_secrets=(STRIPE_SECRET,))
    assert post(client).status_code == 401
    assert post_stripe(client).status_code == 202


def test_stripe_header_without_stripe_secrets_uses_the_standard_scheme(settings, rt):
    client = make_client(settings, billing_secrets=(SECRET,))
    raw = encode(SUBSCRIPTION)
    response = post(client, raw, headers=stripe_headers(raw))
    assert response.status_code == 401
    assert "webhook-id" in response.json["error"]["message"]
