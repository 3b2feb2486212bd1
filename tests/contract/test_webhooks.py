"""Every recorded webhook is accepted by the intake, or ignored when it is another event."""

from __future__ import annotations

import pytest

from tests.conftest import PORTAL_HOOK_TOKEN, WEBHOOK_TOKEN, with_portal
from tests.contract import corpus

EDP_EVENTS = sorted(f for f in corpus.files() if f.startswith("edp/webhook-"))


@pytest.fixture
def settings(settings, portal):
    return with_portal(settings, portal)


@pytest.mark.parametrize("content_type", ["application/json", None, "text/plain",
                                          "application/x-www-form-urlencoded"])
def test_the_recorded_classic_webhook_is_queued_whatever_its_content_type(client, rt,
                                                                          content_type):
    raw = (corpus.CORPUS / "classic/webhook-key_request_event.submitted.json").read_bytes()
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", data=raw, content_type=content_type)
    assert response.status_code == 202
    assert response.json["key_request_id"] == "5e543dd0f56e1a4affdd7acd"
    assert rt.queue.get_job_ids() == ["kr-5e543dd0f56e1a4affdd7acd"]


@pytest.mark.parametrize("file", EDP_EVENTS)
def test_each_recorded_portal_webhook_is_accepted_or_ignored(client, rt, file):
    body = corpus.load(file)
    response = client.post(f"/hooks/portal/{PORTAL_HOOK_TOKEN}", json=body)
    if body["Event"] == "AccessRequestCreated":
        # The recorded event has ID 0 (fired before the record was saved): a reconciler
        # pass finds the request instead.
        assert (response.status_code, response.json["reconcile"]) == (202, True)
    else:
        assert (response.status_code, response.json["status"]) == (200, "ignored")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_portal_webhook_is_accepted_with_each_method_that_carries_a_body(client, rt,
                                                                            method):
    body = {**corpus.load("edp/webhook-AccessRequestApproved.json"), "Event":
            "AccessRequestCreated"}
    response = client.open(f"/hooks/portal/{PORTAL_HOOK_TOKEN}", method=method, json=body)
    assert response.status_code == 202
    assert response.json["key_request_id"] == "portal-1"
    # The event's ids are kept as a hint, checked against the records before any use.
    assert rt.store.hint("portal-1") == {"app": "3", "user": "3", "plan": "2",
                                         "products": ["1"]}
