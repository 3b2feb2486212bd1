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


def test_webhooks_the_sandbox_fires_have_the_recorded_shape(sandbox, receiver):
    url, got = receiver
    sandbox.app.sandbox.set_webhook_url(url)
    pending(sandbox)
    _, _, body = got.get(timeout=5)
    recorded = corpus.load("classic/webhook-key_request_event.submitted.json")
    assert differences(recorded, json.loads(body)) == []


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


__all__ = ["PORTAL_TOKEN"]
