"""The sandbox answers every recorded route in the recorded shape, in each recorded variant."""

from __future__ import annotations

import json

import pytest
import requests

from approver.sandbox import shapes
from tests.conftest import PORTAL_TOKEN, SANDBOX_SECRET
from tests.contract import corpus
from tests.contract.compare import differences

FREE, PRO, BASIC = "64b0000000000000000000b1", "64b0000000000000000000b2", \
    "64b0000000000000000000b4"
DAVE = "64b0000000000000000000a4"
UNKNOWN = "64b0000000000000000000ff"


def call(server, method, path, secret=SANDBOX_SECRET, **kw):
    return requests.request(method, server.url + path, headers={"authorization": secret},
                            timeout=5, **kw)


def pending(sandbox, policies=(FREE,), developer="dave@example.com"):
    return sandbox.app.sandbox.create_key_request(developer, list(policies),
                                                  {"use_case": "x"})["id"]


# How to make the sandbox give each recorded answer: (method, path, keyword arguments).
def _classic(sandbox, answer):
    state = sandbox.app.sandbox
    file = answer.file.split("/", 1)[1]
    if file.startswith("GET-api-portal-requests-id"):
        return "GET", f"/api/portal/requests/{pending(sandbox)}", {}
    if file.startswith("GET-api-portal-requests"):
        pending(sandbox)
        return "GET", "/api/portal/requests", {"params": {"p": -1}}
    if file.startswith("PUT-api-portal-requests-approve"):
        policy = BASIC if "basicauth" in file else FREE
        return "PUT", f"/api/portal/requests/approve/{pending(sandbox, (policy,))}", {}
    if file.startswith("POST-api-portal-requests"):
        body = {"by_user": DAVE, "apply_policies": [FREE], "version": "v2"}
        return "POST", "/api/portal/requests", {"json": body}
    if file == "DELETE-api-portal-requests-id.json":
        return "DELETE", f"/api/portal/requests/{pending(sandbox)}", {}
    if file == "POST-api-portal-developers.json":
        return "POST", "/api/portal/developers", {"json": {"email": "new@example.com"}}
    if file == "PUT-api-portal-developers-id.json":
        record = call(sandbox, "GET", f"/api/portal/developers/{DAVE}").json()
        return "PUT", f"/api/portal/developers/{DAVE}", {"json": record}
    if file == "POST-api-portal-policies.json":
        return "POST", "/api/portal/policies", {"json": {"name": "New", "tags": []}}
    if file == "ERR-401-not-authorised.json":
        return "GET", "/api/portal/policies", {"secret": "wrong-secret-0123456789"}
    if file == "ERR-403-access-denied.json":
        state.withheld_rights = {"policy"}
        return "GET", "/api/portal/policies", {}
    if file == "ERR-404-api-portal-policies-id.json":
        return "GET", f"/api/portal/policies/{UNKNOWN}", {}
    if file.endswith("developers-password-id.json"):
        password = "" if file.startswith("ERR") else "a-long-new-password"
        return "POST", f"/api/portal/developers/password/{DAVE}", {
            "json": {"password": password}}
    if file.startswith("GET-api-portal-developers-id"):
        return "GET", f"/api/portal/developers/{DAVE}", {}
    if file.startswith("GET-api-portal-developers-email"):
        return "GET", "/api/portal/developers/email/dave%40example.com", {}
    if file.startswith("GET-api-portal-developers"):
        return "GET", "/api/portal/developers", {"params": {"p": -1}}
    if file.startswith("GET-api-portal-policies-id"):
        return "GET", f"/api/portal/policies/{PRO}", {}
    if file.startswith("GET-api-portal-policies"):
        return "GET", "/api/portal/policies", {"params": {"p": -1}}
    if file.startswith("GET-api-portal-catalogue"):
        return "GET", "/api/portal/catalogue", {}
    raise AssertionError(f"no way to ask the sandbox for {answer.file}")


CLASSIC = [a for a in corpus.ANSWERS if a.service == "classic"]


@pytest.mark.parametrize("answer", CLASSIC, ids=[a.file for a in CLASSIC])
def test_the_sandbox_dashboard_answers_in_the_recorded_shape(sandbox, answer):
    recorded = answer.body()
    sandbox.app.sandbox.shapes.choose(answer.route, answer.variant)
    method, path, options = _classic(sandbox, answer)
    response = call(sandbox, method, path, **options)
    assert response.headers["Content-Type"].startswith("application/json")
    answered = response.json()
    assert differences(recorded, answered) == []
    assert response.ok is not answer.file.split("/")[1].startswith("ERR-")


PORTAL = [a for a in corpus.ANSWERS if a.service == "portal"]


def _portal_path(portal, route: str) -> str:
    state = portal.app.sandbox
    ar = state.create_access_request("alice@acme.partner.example", ["Free"], "Free plan")
    state.approve_access_request(ar["ID"])  # with a credential, as recorded
    return {
        "GET /portal-api/apps": "/portal-api/apps",
        "GET /portal-api/apps/{id}/access-requests": "/portal-api/apps/1/access-requests",
        "GET /portal-api/apps/{id}/access-requests/{id}":
            f"/portal-api/apps/1/access-requests/{ar['ID']}",
        "GET /portal-api/users/{id}": "/portal-api/users/2",
        "GET /portal-api/organisations/{id}": "/portal-api/organisations/1",
        "GET /portal-api/products/{id}": "/portal-api/products/1",
        "GET /portal-api/providers": "/portal-api/providers",
    }[route]


@pytest.mark.parametrize("answer", PORTAL, ids=[a.file for a in PORTAL])
def test_the_sandbox_portal_answers_in_the_recorded_shape(portal, answer):
    response = call(portal, "GET", _portal_path(portal, answer.route), secret=PORTAL_TOKEN)
    assert differences(answer.body(), response.json()) == []
    dump = answer.file.replace(".json", ".http")
    status, headers, _ = corpus.http_dump(dump)
    assert response.status_code == status
    for name in ("content-type", "cache-control", "pragma"):
        assert response.headers.get(name) == headers.get(name), name


def test_a_single_access_request_has_the_shape_of_a_listed_one(portal):
    # The spec answers both with AccessRequest-index-elem; only the list is recorded.
    recorded = corpus.load("edp/GET-portal-api-apps-id-access-requests.json")[0]
    state = portal.app.sandbox
    ar = state.create_access_request("alice@acme.partner.example", ["Free"], "Free plan")
    for path in ("/portal-api/access_requests", f"/portal-api/access_requests/{ar['ID']}"):
        body = call(portal, "GET", path, secret=PORTAL_TOKEN).json()
        assert differences(recorded, body[0] if isinstance(body, list) else body) == []


def test_an_unknown_portal_path_is_gos_plain_404(portal):
    status, headers, body = corpus.http_dump("edp/ERR-404-page-not-found.http")
    response = call(portal, "GET", "/portal-api/no-such-thing", secret=PORTAL_TOKEN)
    assert (response.status_code, response.text) == (status, body)
    assert response.headers["Content-Type"] == headers["content-type"]
    assert response.headers["X-Content-Type-Options"] == headers["x-content-type-options"]


def test_webhooks_the_sandbox_fires_have_the_recorded_shape(sandbox, receiver):
    url, got = receiver
    sandbox.app.sandbox.set_webhook_url(url)
    pending(sandbox)
    _, _, body = got.get(timeout=5)
    recorded = corpus.load("classic/webhook-key_request_event.submitted.json")
    assert differences(recorded, json.loads(body)) == []


def test_portal_webhooks_the_sandbox_fires_have_the_recorded_shape(portal, receiver):
    url, got = receiver
    portal.app.sandbox.set_webhook_url(url)
    portal.app.sandbox.create_access_request("alice@acme.partner.example", ["Free"],
                                             "Free plan")
    _, _, body = got.get(timeout=5)
    recorded = corpus.load("edp/webhook-AccessRequestCreated.json")
    assert differences(recorded, json.loads(body)) == []


def test_differences_name_missing_invented_and_mistyped_fields():
    recorded = {"ID": 1, "Plan": "free_plan", "keys": {"a": ["p"]}, "Tags": None,
                "Credentials": [{"ID": 29}]}
    answered = {"ID": "1", "AppID": 3, "keys": {"b": "p"}, "Tags": ["x"],
                "Credentials": [{"ID": 2, "Key": "k"}]}
    assert sorted(differences(recorded, answered)) == [
        "$.AppID: not in Tyk's answer", "$.Credentials[0].Key: not in Tyk's answer",
        "$.ID: string where Tyk answers number", "$.Plan: missing",
        "$.keys['b']: string where Tyk answers list"]


def test_the_sandboxs_shapes_are_the_corpus_shapes():
    # `python -m tests.contract.corpus` rewrites them after a recording is added.
    assert shapes.catalogue() == corpus.shapes()


def test_every_route_answers_its_default_variant_unless_told(sandbox):
    state = sandbox.app.sandbox
    state.shapes.choose("GET /api/portal/developers", "2015-legacy")
    legacy = call(sandbox, "GET", "/api/portal/developers").json()["Data"][0]
    assert "api_keys" in legacy and "keys" not in legacy
    state.shapes.choose("GET /api/portal/developers", None)
    current = call(sandbox, "GET", "/api/portal/developers").json()["Data"][0]
    assert "keys" in current and "password" not in current
    with pytest.raises(ValueError):
        state.shapes.choose("GET /api/portal/developers", "1999")

