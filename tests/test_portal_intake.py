"""The new portal's webhook intake: tokens, HEAD, shapes, ignored events, ID 0, the queue."""

import json

import pytest

from approver.pipeline import enqueue
from tests.conftest import PORTAL_HOOK_TOKEN, WEBHOOK_TOKEN, with_portal
from tests.test_openapi import check_answer

# The documented sample (Tyk CONTRACT §4), with a real ID.
SAMPLE = {
    "Event": "AccessRequestCreated",
    "Message": {"ID": 7, "AppID": 1, "ByUser": 2, "Status": "pending", "ProductIDs": [1],
                "PlanID": 2, "CreatedAt": "2024-04-22T16:09:45Z"},
    "Timestamp": "2024-04-22T18:09:45.245357+02:00",
}
PATH = f"/hooks/portal/{PORTAL_HOOK_TOKEN}"


@pytest.fixture
def settings(settings, portal):
    return with_portal(settings, portal)


def post(client, body=SAMPLE, path=PATH, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=data, **kwargs)


def event(**message):
    return {**SAMPLE, "Message": {**SAMPLE["Message"], **message}}


def test_access_request_created_queues_its_decision(client, rt):
    response = post(client)
    assert response.status_code == 202
    assert response.json == {"status": "queued", "key_request_id": "portal-7"}
    assert rt.queue.get_job_ids() == [enqueue.decide_job_id("portal-7")]
    job = rt.queue.fetch_job(enqueue.decide_job_id("portal-7"))
    assert job.args == ["portal-7", "webhook"]
    check_answer("/hooks/portal/{token}", "post", response)


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {PORTAL_HOOK_TOKEN}"},
    {"authorization": f"bearer {PORTAL_HOOK_TOKEN}"},
    {"X-Approver-Token": PORTAL_HOOK_TOKEN},
])
def test_token_in_a_custom_header_is_accepted(client, rt, headers):
    response = post(client, path="/hooks/portal", headers=headers)
    assert response.status_code == 202
    check_answer("/hooks/portal", "post", response)


@pytest.mark.parametrize(("path", "headers"), [
    ("/hooks/portal/wrong-token-0123456789", {}),
    (f"/hooks/portal/{WEBHOOK_TOKEN}", {}),  # the classic hook's token is not the portal's
    ("/hooks/portal", {}),
    ("/hooks/portal", {"Authorization": "Bearer nope"}),
    ("/hooks/portal", {"X-Approver-Token": WEBHOOK_TOKEN}),
])
def test_bad_or_missing_token_is_401_and_queues_nothing(client, rt, path, headers):
    response = post(client, path=path, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert rt.queue.get_job_ids() == []


def test_portal_token_is_refused_on_the_classic_hook(client, rt):
    response = client.post(f"/hooks/tyk/{PORTAL_HOOK_TOKEN}",
                           json={"event": "key_request_event.submitted", "data": {"id": "x1"}})
    assert response.status_code == 401


@pytest.mark.parametrize("path", [PATH, "/hooks/portal", "/hooks/portal/anything"])
def test_head_test_connection_answers_200_without_headers(client, rt, path):
    response = client.head(path)
    assert response.status_code == 200
    assert rt.queue.get_job_ids() == []


@pytest.mark.parametrize("body", [
    b'{"Event": ',
    b"[]",
    b'"AccessRequestCreated"',
    {"Event": "AccessRequestCreated"},
    {"Message": {"ID": 1}},
    {"Event": "AccessRequestCreated", "Message": {}},
    {"Event": "AccessRequestCreated", "Message": []},
    {"Event": "AccessRequestCreated", "Message": {"ID": "7"}},
    {"Event": "AccessRequestCreated", "Message": {"ID": -1}},
    {"Event": "AccessRequestCreated", "Message": {"ID": 1.5}},
    {"Event": "AccessRequestCreated", "Message": {"ID": True}},
    {"Event": "AccessRequestCreated", "Message": {"ID": 10 ** 30}},
    {"Event": "", "Message": {}},
    {"Event": 5, "Message": {}},
    {"Event": "UserRegistered", "Message": {}, "Timestamp": 5},
])
def test_bad_bodies_are_400_never_5xx(client, rt, body):
    response = post(client, body)
    assert response.status_code == 400, response.data
    assert response.json["error"]["code"] in ("malformed_json", "bad_shape")
    assert rt.queue.get_job_ids() == []
    check_answer("/hooks/portal/{token}", "post", response)


def test_non_json_is_415_and_over_the_limit_is_413(client, rt):
    assert post(client, b"<x/>", content_type="application/xml").status_code == 415
    assert post(client, b" " * (65 * 1024)).status_code == 413
    assert rt.queue.get_job_ids() == []


@pytest.mark.parametrize("name", [
    "AccessRequestApproved", "AccessRequestRejected", "UserRegistered",
    "ApplicationRegistered", "OrganisationRequestCreated",
])
def test_other_events_are_ignored_with_200(client, rt, name):
    response = post(client, {"Event": name, "Message": {"ID": 3}})
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "event": name}
    assert rt.queue.get_job_ids() == []
    check_answer("/hooks/portal/{token}", "post", response)


def test_duplicate_deliveries_collapse_into_one_job(client, rt):
    first, second = post(client), post(client, path="/hooks/portal",
                                       headers={"X-Approver-Token": PORTAL_HOOK_TOKEN})
    assert (first.json["status"], second.json["status"]) == ("queued", "duplicate")
    assert second.status_code == 202
    assert rt.queue.get_job_ids() == [enqueue.decide_job_id("portal-7")]


def test_id_zero_queues_one_immediate_reconciler_pass(client, rt):
    # Tyk CONTRACT §4: the documented sample has ID 0 (fired before the record was saved).
    zero = event(ID=0, CreatedAt="0001-01-01T00:00:00Z")
    first, again = post(client, zero), post(client, zero)
    assert first.status_code == again.status_code == 202
    assert first.json == {"status": "queued", "reconcile": True}
    ids = rt.queue.get_job_ids()
    assert len(ids) == 1 and ids[0].startswith("reconcile-now-")
    assert rt.queue.fetch_job(ids[0]).func_name == enqueue.RECONCILE
    check_answer("/hooks/portal/{token}", "post", first)
    # Within the same few seconds a second event adds nothing (a different slot may).
    assert again.json["status"] in ("duplicate", "queued")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_with_a_body_are_accepted_like_post(client, rt, method):
    response = client.open(PATH, method=method, json=SAMPLE)
    assert response.status_code == 202
    check_answer("/hooks/portal/{token}", method.lower(), response)


def test_redis_unreachable_is_503(settings):
    from approver.web import create_app

    app = create_app(settings.with_(redis_url="redis://127.0.0.1:1/0"))
    response = post(app.test_client())
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_without_portal_tokens_every_portal_event_is_401(settings, redis_conn):
    from approver.web import create_app

    app = create_app(settings.with_(portal_webhook_tokens=()))
    assert post(app.test_client()).status_code == 401
