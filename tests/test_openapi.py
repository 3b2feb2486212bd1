"""The OpenAPI document: valid, in step with the app's routes, and true to the app's answers."""

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from standardwebhooks.webhooks import Webhook

from approver import signing
from approver import state as st
from approver.web import create_app, handoff, openapi, schemas
from tests.conftest import WEBHOOK_TOKEN

SECRET = "whsec_" + base64.b64encode(b"openapi-test-billing-secret-0123").decode()
STRIPE_SECRET = "whsec_stripe-openapi-test-secret"
CHECKOUT = "https://pay.example.com/checkout"
DOC_URI = "urn:tyk-approver:openapi"
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SOURCE = Path(openapi.__file__).parent / "schemas" / openapi.SOURCE
KR = "64b0000000000000000000c1"


# --- the document on its own ---------------------------------------------------------------

def test_the_served_document_is_valid_openapi_3_1():
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)


def test_the_stored_document_is_valid_with_its_file_references():
    validate(openapi.source(), base_uri=SOURCE.resolve().as_uri())


def test_request_body_schemas_are_the_validators_files_not_copies():
    stored = openapi.source()["components"]["schemas"]
    assert stored["TykWebhookEvent"] == {"$ref": "tyk-webhook.json"}
    assert stored["BillingEvent"] == {"$ref": "billing-event.json"}
    # Every schema file beside the document is referenced, none is inlined.
    names = {p.name for p in SOURCE.parent.glob("*.json")} - {SOURCE.name}
    assert names == {v["$ref"] for v in stored.values() if set(v) == {"$ref"}}
    served = openapi.document()["components"]["schemas"]
    for component, name in (("TykWebhookEvent", "tyk-webhook"), ("BillingEvent", "billing-event")):
        original = schemas.schema(name)
        embedded = served[component]
        assert embedded["x-schema-id"] == original["$id"]
        assert embedded["properties"].keys() == original["properties"].keys()
        assert "$id" not in embedded  # its references are rewritten to this document
    # Bundling never touches what the validators hold.
    assert schemas.schema("tyk-webhook")["properties"]["data"]["properties"]["id"] == {
        "$ref": "#/$defs/id"}


@pytest.mark.parametrize(("name", "pointer", "document"), [
    ("tyk-webhook", "/components/schemas/TykWebhookEvent",
     {"event": "key_request_event.created", "data": {"id": KR}}),
    ("tyk-webhook", "/components/schemas/TykWebhookEvent",
     {"event": "key_request_event.created", "data": {"_id": "no/slashes"}}),
    ("tyk-webhook", "/components/schemas/TykWebhookEvent", {"event": "x", "data": {}}),
    ("billing-event", "/components/schemas/BillingEvent",
     {"type": "billing.status", "data": {"developer_id": "d1", "status": "active",
                                         "occurred_at": "2026-11-23T10:00:00Z"}}),
    ("billing-event", "/components/schemas/BillingEvent",
     {"type": "billing.status", "data": {"developer_id": "d1", "status": "gone",
                                         "occurred_at": "2026-11-23T10:00:00Z"}}),
    ("billing-event", "/components/schemas/BillingEvent",
     {"type": "key_request.decision", "data": {"key_request_id": "../x", "decision": "approve"}}),
])
def test_the_documents_request_schemas_judge_as_the_validators_do(name, pointer, document):
    expected_valid = schemas.first_error(name, document) is None
    errors = validator_at(openapi.document(), pointer).iter_errors(document)
    assert (next(errors, None) is None) == expected_valid


def test_routes_and_document_match(api):
    doc = openapi.document()
    routes = set()
    for rule in api.application.url_map.iter_rules():
        # The console is pages for people, not an API: docs/console.md describes it.
        if rule.endpoint == "static" or rule.rule.startswith("/console/"):
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        methods = set(rule.methods) - {"OPTIONS"}
        if "GET" in methods:
            methods.discard("HEAD")  # Flask's automatic HEAD for GET routes
        routes |= {(path, m.lower()) for m in methods}
    documented = {(path, method) for path, item in doc["paths"].items()
                  for method in item if method in OPERATIONS}
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented operations the app does not have"


def test_openapi_json_serves_the_document_once_built(api):
    first, second = api.get("/openapi.json"), api.get("/openapi.json")
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert first.json == openapi.document()
    assert first.data == second.data
    check_answer("/openapi.json", "get", first)


# --- real answers against the document -----------------------------------------------------

def tyk_event(event="key_request_event.created", request_id=KR):
    return {"event": event, "data": {"id": request_id, "org_id": "o1", "by_user": "u"}}


def standard_signed(body: bytes, secret=SECRET, msg_id="msg_openapi_1") -> dict:
    now = datetime.now(UTC)
    return {"content_type": "application/json", "data": body, "headers": {
        "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode())}}


def stripe_signed(body: bytes, secret=STRIPE_SECRET) -> dict:
    timestamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content_type": "application/json", "data": body,
            "headers": {"Stripe-Signature": f"t={timestamp},v1={mac}"}}


def raw(document) -> bytes:
    return json.dumps(document).encode()


STATUS_EVENT = raw({"type": "billing.status", "data": {
    "developer_id": "64b0000000000000000000a4", "status": "active", "plan": "pro",
    "occurred_at": "2026-11-23T10:00:00Z"}})
STRIPE_EVENT = raw({"id": "evt_1", "type": "customer.subscription.updated",
                    "created": int(time.time()), "data": {"object": {
                        "status": "active", "metadata": {"tyk_developer_id": "dev1"},
                        "items": {"data": []}}}})
HOOK = {"content_type": "application/json", "data": raw(tyk_event())}
BEARER = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
T = f"/hooks/tyk/{WEBHOOK_TOKEN}"
INTERNAL = "http://localhost:9100"


def waiting_for_billing(store):
    store.save_state(KR, state=st.WAITING, wait={"for": "billing"}, developer_id="dev1",
                     reason="paid plan")


def approved(store):
    store.save_state(KR, state=st.APPLIED, outcome="approve", reason="rule free")


def known_checkout_state(store):
    store.redis.set(handoff.CHECKOUT_PREFIX + "state-1",
                    json.dumps({"key_request_id": KR, "developer_id": "dev1"}))


def limit_reached(store):
    for _ in range(30):
        store.redis.incr(f"approver:limit:handoff:127.0.0.1:{int(time.time() // 60)}")


def status_url(app):
    key = app.extensions["approver"].settings.secret_key
    return "/status/" + signing.sign(key, {"kr": KR}, 60, "status")


# (id, which app, method, path template, url or url(app), request kwargs, expected, setup)
CASES = [
    # Tyk webhooks
    ("hook-head-path", "app", "head", "/hooks/tyk/{token}", "/hooks/tyk/anything", {}, 200),
    ("hook-head", "app", "head", "/hooks/tyk", "/hooks/tyk", {}, 200),
    ("hook-path-token", "app", "post", "/hooks/tyk/{token}", T, HOOK, 202),
    ("hook-put", "app", "put", "/hooks/tyk/{token}", T, HOOK, 202),
    ("hook-bearer", "app", "post", "/hooks/tyk", "/hooks/tyk", {**HOOK, "headers": BEARER}, 202),
    ("hook-x-token", "app", "put", "/hooks/tyk", "/hooks/tyk",
     {**HOOK, "headers": {"X-Approver-Token": WEBHOOK_TOKEN}}, 202),
    ("hook-text-plain", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "text/plain",
      "data": raw(tyk_event(request_id="64b0000000000000000000c2"))}, 202),
    ("hook-other-event", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "application/json", "data": raw(tyk_event("api_key_request.x"))}, 200),
    ("hook-other-organisation", "app", "post", "/hooks/tyk/{token}", T, HOOK, 200,
     lambda store: store.publish_health(org_id="64b0000000000000000000e0")),
    ("hook-wrong-token", "app", "post", "/hooks/tyk/{token}", "/hooks/tyk/wrong/token", HOOK, 401),
    ("hook-no-token", "app", "post", "/hooks/tyk", "/hooks/tyk", HOOK, 401),
    ("hook-malformed", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "application/json", "data": b'{"event": '}, 400),
    ("hook-bad-shape", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "application/json", "data": raw(tyk_event(request_id="../../x"))}, 400),
    ("hook-not-json", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "application/xml", "data": b"<event/>"}, 415),
    ("hook-too-large", "app", "post", "/hooks/tyk/{token}", T,
     {"content_type": "application/json", "data": b" " * (65 * 1024)}, 413),
    ("hook-redis-down", "down", "post", "/hooks/tyk/{token}", T, HOOK, 503),
    # Billing events
    ("billing-standard", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(STATUS_EVENT), 202),
    ("billing-ignored", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(raw({"type": "invoice.paid", "data": {}})), 200),
    ("billing-bad-signature", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(STATUS_EVENT,
                             secret="whsec_" + base64.b64encode(b"x" * 32).decode()), 401),
    ("billing-unsigned", "billing", "post", "/billing/events", "/billing/events",
     {"content_type": "application/json", "data": STATUS_EVENT}, 401),
    ("billing-not-json-type", "billing", "post", "/billing/events", "/billing/events",
     lambda: {**standard_signed(STATUS_EVENT), "content_type": "text/plain"}, 415),
    ("billing-malformed", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(b"{nope"), 400),
    ("billing-bad-shape", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(raw({"type": "billing.status", "data": {"status": "active"}})), 400),
    ("billing-too-large", "billing", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(b" " * (65 * 1024)), 413),
    ("billing-off", "app", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(STATUS_EVENT), 404),
    ("billing-redis-down", "billing-down", "post", "/billing/events", "/billing/events",
     lambda: standard_signed(STATUS_EVENT), 503),
    ("stripe-event", "stripe", "post", "/billing/events", "/billing/events",
     lambda: stripe_signed(STRIPE_EVENT), 202),
    ("stripe-ignored", "stripe", "post", "/billing/events", "/billing/events",
     lambda: stripe_signed(raw({"id": "evt_2", "type": "charge.succeeded", "data": {}})), 200),
    ("stripe-no-metadata", "stripe", "post", "/billing/events", "/billing/events",
     lambda: stripe_signed(raw({"id": "evt_3", "type": "customer.subscription.created",
                        "created": 1, "data": {"object": {"status": "active"}}})), 400),
    ("stripe-bad-signature", "stripe", "post", "/billing/events", "/billing/events",
     lambda: {**stripe_signed(STRIPE_EVENT), "headers": {"Stripe-Signature": "t=1,v1=00"}}, 401),
    ("checkout-state", "billing", "post", "/billing/checkout-state", "/billing/checkout-state",
     lambda: standard_signed(raw({"state": "state-1"})), 200, known_checkout_state),
    ("checkout-state-unknown", "billing", "post", "/billing/checkout-state",
     "/billing/checkout-state", lambda: standard_signed(raw({"state": "state-2"})), 404),
    ("checkout-state-bad-body", "billing", "post", "/billing/checkout-state",
     "/billing/checkout-state", lambda: standard_signed(raw(["state-1"])), 400),
    ("checkout-state-not-json-typed", "billing", "post", "/billing/checkout-state",
     "/billing/checkout-state",
     lambda: {**standard_signed(raw({"state": "state-1"})), "content_type": "text/plain"}, 415),
    ("checkout-state-unsigned", "billing", "post", "/billing/checkout-state",
     "/billing/checkout-state", {"json": {"state": "state-1"}}, 401),
    ("checkout-state-off", "app", "post", "/billing/checkout-state", "/billing/checkout-state",
     lambda: standard_signed(raw({"state": "state-1"})), 404),
    # Hand-off and status pages
    ("handoff-no-id", "app", "get", "/handoff", "/handoff", {}, 400),
    ("handoff-empty-form", "app", "post", "/handoff", "/handoff", {"data": {"other": "1"}}, 400),
    ("handoff-bad-id", "app", "get", "/handoff", "/handoff?id=../../admin", {}, 404),
    ("handoff-script-id", "app", "get", "/handoff",
     "/handoff?key_request_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E", {}, 404),
    ("handoff-form-bad-id", "app", "post", "/handoff", "/handoff",
     {"data": {"key_request_id": "a" * 300}}, 404),
    ("handoff-processing", "app", "get", "/handoff", f"/handoff?request_id={KR}", {}, 202),
    ("handoff-approved", "app", "get", "/handoff", f"/handoff?id={KR}", {}, 200, approved),
    ("handoff-to-checkout", "checkout", "post", "/handoff", "/handoff",
     {"data": {"key_request": KR}}, 303, waiting_for_billing),
    ("handoff-form-too-large", "app", "post", "/handoff", "/handoff",
     {"data": {"id": "a" * (65 * 1024)}}, 413),
    ("handoff-redis-down", "down", "get", "/handoff", f"/handoff?id={KR}", {}, 503),
    ("handoff-too-many", "app", "get", "/handoff", f"/handoff?id={KR}", {}, 429, limit_reached),
    ("status-bad-token", "app", "get", "/status/{token}", "/status/not-a-token", {}, 404),
    ("status-processing", "app", "get", "/status/{token}", status_url, {}, 202),
    ("status-waiting", "app", "get", "/status/{token}", status_url, {}, 200,
     waiting_for_billing),
    ("status-to-checkout", "checkout", "get", "/status/{token}", status_url, {}, 303,
     waiting_for_billing),
    # Operations
    ("healthz", "app", "get", "/healthz", "/healthz", {}, 200),
    ("readyz", "app", "get", "/readyz", "/readyz", {}, 200),
    ("readyz-internal", "internal", "get", "/readyz", f"{INTERNAL}/readyz", {}, 200),
    ("readyz-redis-down", "down", "get", "/readyz", "/readyz", {}, 503),
    ("readyz-internal-redis-down", "internal-down", "get", "/readyz", f"{INTERNAL}/readyz", {},
     503),
    ("metrics-public", "internal", "get", "/metrics", "/metrics", {}, 404),
    ("metrics", "internal", "get", "/metrics", f"{INTERNAL}/metrics", {}, 200),
    ("metrics-redis-down", "internal-down", "get", "/metrics", f"{INTERNAL}/metrics", {}, 200),
    ("openapi", "down", "get", "/openapi.json", "/openapi.json", {}, 200),
]


@pytest.mark.parametrize(
    ("kind", "method", "template", "url", "kwargs", "expected", "setup"),
    [pytest.param(*case[1:7], case[7] if len(case) > 7 else None, id=case[0]) for case in CASES],
)
def test_real_answers_are_documented(make_client, kind, method, template, url,
                                     kwargs, expected, setup):
    client = make_client(kind)
    app = client.application
    if setup:
        setup(app.extensions["approver"].store)
    target = url(app) if callable(url) else url
    # Signed bodies are signed now, not when the cases were collected: the signature's
    # timestamp must be within the 5-minute tolerance when the request is made.
    response = client.open(target, method=method.upper(),
                           **(kwargs() if callable(kwargs) else kwargs))
    assert response.status_code == expected, response.data[:300]
    check_answer(template, method, response)


def test_a_webhook_replay_is_a_documented_duplicate(make_client):
    client = make_client("app")
    first = client.post(T, **HOOK)
    again = client.post(T, **HOOK)
    assert (first.json["status"], again.json["status"]) == ("queued", "duplicate")
    check_answer("/hooks/tyk/{token}", "post", again)


# --- helpers -------------------------------------------------------------------------------

@pytest.fixture
def make_client(settings):
    """A test client of an app of `kind`, with the openapi blueprint registered."""

    def make(kind: str):
        changes = {
            "app": {},
            "billing": {"billing_secrets": (SECRET,)},
            "stripe": {"stripe_secrets": (STRIPE_SECRET,)},
            "checkout": {"checkout_url": CHECKOUT},
            "down": {"redis_url": "redis://127.0.0.1:1/0"},
            "internal": {"internal_bind": "127.0.0.1:9100"},
            "internal-down": {"internal_bind": "127.0.0.1:9100",
                              "redis_url": "redis://127.0.0.1:1/0"},
            "billing-down": {"redis_url": "redis://127.0.0.1:1/0", "billing_secrets": (SECRET,)},
        }[kind]
        app = create_app(settings.with_(**changes))
        if "openapi" not in app.blueprints:
            app.register_blueprint(openapi.bp)
        return app.test_client()

    return make


@pytest.fixture
def api(make_client):
    return make_client("app")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def follow(doc: dict, pointer: str) -> tuple[dict, str]:
    """The object at `pointer`, through any chain of local `$ref`s, and where it ended up."""
    node = doc
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node, pointer = follow(doc, pointer)
    return node, pointer


def validator_at(doc: dict, pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer`, resolving references within `doc`."""
    registry = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_answer(template: str, method: str, response) -> None:
    """The answer's status is one the operation lists; its headers and body are as described."""
    doc = openapi.document()
    operation = doc["paths"][template][method]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method.upper()} {template} answered {status}, documented: "
        f"{sorted(operation['responses'])}")
    described, where = follow(doc, f"/paths/{_escape(template)}/{method}/responses/{status}")

    for name in described.get("headers", {}):
        header, header_at = follow(doc, f"{where}/headers/{_escape(name)}")
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"documented header {name} missing"
        if value is not None:
            validator_at(doc, f"{header_at}/schema").validate(value)

    content = described.get("content", {})
    if method == "head" or not response.data:
        assert method == "head" or not content, "an empty body where content is documented"
        return
    assert response.mimetype in content, (
        f"{response.mimetype} not documented for {status}: {sorted(content)}")
    if response.mimetype == "application/json":
        body = json.loads(response.data)
        validator_at(doc, f"{where}/content/{_escape(response.mimetype)}/schema").validate(body)
