"""The webhook intake: authentication, shape, answers, and what lands on the queue."""

import json

import pytest

from approver.config import Settings
from approver.pipeline import enqueue
from approver.web import create_app
from approver.web.hooks import _key_request_event
from approver.web.schemas import first_error
from tests.conftest import WEBHOOK_TOKEN

REQUEST_ID = "5e543dd0f56e1a4affdd7acd"
# Shaped like Tyk's documented key_request_event.submitted sample (Tyk CONTRACT §1.3).
SAMPLE = {
    "event": "key_request_event.submitted",
    "data": {
        "id": REQUEST_ID,
        "org_id": "5e2743567c1f8800018bdf35",
        "for_plan": "5e2744897c1f8800018bdf3b",
        "apply_policies": ["5e2744897c1f8800018bdf3b"],
        "by_user": "5e430ef68131890001b83d2e",
        "approved": False,
        "date_created": "2020-02-24T16:19:12.175113-05:00",
        "portal_developer": {"id": "5e430ef68131890001b83d2e", "email": "dev@dev.ca"},
        "catalogue_entry": {"name": "frontend APIs", "policy_id": "5e2744897c1f8800018bdf3b"},
    },
}


def queued_ids(rt) -> list[str]:
    return rt.queue.get_job_ids()


def post(client, body=SAMPLE, path=f"/hooks/tyk/{WEBHOOK_TOKEN}", **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=data, **kwargs)


def test_webhook_with_path_token_is_queued(client, rt):
    response = post(client)
    assert response.status_code == 202
    assert response.json == {"status": "queued", "key_request_id": REQUEST_ID}
    assert queued_ids(rt) == [enqueue.decide_job_id(REQUEST_ID)]
    job = rt.queue.fetch_job(enqueue.decide_job_id(REQUEST_ID))
    assert job.args == [REQUEST_ID, "webhook"]


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    {"X-Approver-Token": WEBHOOK_TOKEN},
])
def test_webhook_with_header_token_is_queued(client, rt, headers):
    response = post(client, path="/hooks/tyk", headers=headers)
    assert response.status_code == 202
    assert queued_ids(rt) == [enqueue.decide_job_id(REQUEST_ID)]


def test_second_token_is_accepted_while_rotating(settings, rt):
    new = "new-webhook-token-0123456789"
    client = create_app(settings.with_(webhook_tokens=(WEBHOOK_TOKEN, new))).test_client()
    assert post(client, path=f"/hooks/tyk/{new}").status_code == 202


@pytest.mark.parametrize("path,headers", [
    ("/hooks/tyk/wrong-token-0123456789abc", {}),
    ("/hooks/tyk", {}),
    ("/hooks/tyk", {"Authorization": "Bearer nope"}),
    ("/hooks/tyk", {"Authorization": WEBHOOK_TOKEN}),  # no Bearer prefix
    ("/hooks/tyk", {"X-Approver-Token": ""}),
    (f"/hooks/tyk/{WEBHOOK_TOKEN}x", {}),
])
def test_bad_or_missing_token_is_401_and_queues_nothing(client, rt, path, headers):
    response = post(client, path=path, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert queued_ids(rt) == []


def test_duplicate_deliveries_collapse_into_one_job(client, rt):
    answers = [post(client) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
    assert [a.json["status"] for a in answers] == ["queued"] + ["duplicate"] * 4
    assert queued_ids(rt) == [enqueue.decide_job_id(REQUEST_ID)]


@pytest.mark.parametrize("retry_delays", [(1,), (1, 5, 30), ()])
def test_a_queued_decision_is_the_job_rq_writes(rt, redis_conn, monkeypatch, retry_delays):
    # The webhook's one-round-trip enqueue fills RQ's own job hash in for each request: the
    # same fields, in the same order, with the same values and TTL as RQ's enqueue_call.
    import datetime as dt

    import rq.job
    import rq.queue

    moment = dt.datetime(2026, 12, 5, 15, 4, 5, 678901, tzinfo=dt.UTC)
    for module in (enqueue, rq.job, rq.queue):
        monkeypatch.setattr(module, "now", lambda: moment)
    key = rq.job.Job.key_for(enqueue.decide_job_id(REQUEST_ID))
    written = []
    for write in (
        lambda: enqueue.decision(rt.queue, REQUEST_ID, "webhook", retry_delays),
        lambda: rt.queue.enqueue_call(enqueue.DECIDE, (REQUEST_ID, "webhook"), unique=True,
                                      **enqueue._options(REQUEST_ID, "webhook", retry_delays)),
    ):
        assert write()
        written.append((list(redis_conn.hgetall(key).items()), redis_conn.ttl(key),
                        redis_conn.lrange(rt.queue.key, 0, -1)))
        redis_conn.delete(key, rt.queue.key)
    assert written[0] == written[1]
    fields = dict(written[0][0])
    assert fields[b"description"] == f"decide key request {REQUEST_ID} (webhook)".encode()
    assert fields[b"enqueued_at"] == b"2026-12-05T15:04:05.678901Z"
    assert fields.get(b"retry_intervals") == (json.dumps(list(retry_delays)).encode()
                                              if retry_delays else None)


def test_values_written_into_the_enqueue_script_reach_redis_byte_for_byte(redis_conn):
    value = bytes(range(256)) + b'"\\"' + "décidé".encode()
    assert redis_conn.eval(f"return {enqueue._lua_text(value)}", 0) == value


@pytest.mark.parametrize("path", [f"/hooks/tyk/{WEBHOOK_TOKEN}", "/hooks/tyk",
                                  "/hooks/tyk/anything"])
def test_head_answers_200_with_no_side_effects(client, rt, path):
    response = client.head(path)
    assert response.status_code == 200
    assert queued_ids(rt) == []


@pytest.mark.parametrize("body,code", [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe\x00", "malformed_json"),
    (b"", "malformed_json"),
    (b"[]", "bad_shape"),
    (b'"text"', "bad_shape"),
    (json.dumps({"event": "key_request_event.submitted"}), "bad_shape"),
    (json.dumps({"event": "key_request_event.submitted", "data": {}}), "bad_shape"),
    (json.dumps({"event": 7, "data": {"id": REQUEST_ID}}), "bad_shape"),
    (json.dumps({"event": "key_request_event.submitted", "data": {"id": 12}}), "bad_shape"),
    (json.dumps({"event": "key_request_event.submitted", "data": {"id": "../../etc"}}),
     "bad_shape"),
    (json.dumps({"event": "key_request_event.submitted", "data": {"id": "x" * 65}}),
     "bad_shape"),
    (b"[" * 5000 + b"]" * 5000, "malformed_json"),
])
def test_malformed_body_is_400_never_500(client, rt, body, code):
    response = post(client, body)
    assert response.status_code == 400, response.data
    assert response.json["error"]["code"] == code
    assert queued_ids(rt) == []


_ID = REQUEST_ID
_SHAPES = [
    SAMPLE,
    {"event": "key_request_event.submitted", "data": {"_id": _ID}},
    {"event": "key_request_event.approved", "data": {"id": _ID, "_id": _ID}},
    {"event": "key_request_event.x", "data": {"id": _ID, "_id": "5E543DD0F56E1A4AFFDD7ACD"}},
    {"event": "key_request_event.x", "data": {"id": _ID + "\n"}},
    {"event": "key_request_event.x", "data": {"id": _ID[:-1]}},
    {"event": "key_request_event.x", "data": {"id": None, "_id": _ID}},
    {"event": "key_request_event.x", "data": {"id": True}},
    {"event": "key_request_event.x", "data": []},
    {"event": "key_request_event", "data": {"id": _ID}},
    {"event": "key_request_event." + "x" * 200, "data": {"id": _ID}},
    {"event": "", "data": {"id": _ID}},
    {"event": "api_key_request.x", "data": {"id": "any-id"}},
    {"event": "key_request_event.x"},
    {"data": {"id": _ID}},
    [SAMPLE],
    "text",
]


@pytest.mark.parametrize("body", _SHAPES)
def test_the_hand_check_accepts_only_what_the_schema_accepts(body):
    if _key_request_event(body):
        assert first_error("tyk-webhook", body) is None


def test_the_hand_check_takes_the_common_shapes():
    assert [_key_request_event(b) for b in _SHAPES[:3]] == [True, True, True]
    assert not any(_key_request_event(b) for b in _SHAPES[3:])


def test_body_over_limit_is_413(client, rt):
    body = json.dumps({**SAMPLE, "padding": "x" * (64 * 1024)})
    response = post(client, body)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert queued_ids(rt) == []


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html",
    "application/xml",
])
def test_a_json_event_is_accepted_whatever_its_content_type(client, rt, content_type):
    # Tyk's sender is undocumented (Tyk CONTRACT §1.4): the body decides, not its label.
    response = post(client, content_type=content_type)
    assert response.status_code == 202
    assert queued_ids(rt) == [enqueue.decide_job_id(REQUEST_ID)]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/html",
                                          "application/xml"])
def test_a_body_that_is_not_json_under_another_type_is_415(client, rt, content_type):
    response = post(client, body="a=1&b=<x/>", content_type=content_type)
    assert response.status_code == 415
    assert queued_ids(rt) == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=utf-8",
                                          "application/vnd.tyk+json"])
def test_tolerated_content_types_are_accepted(client, rt, content_type):
    # Tyk's own Content-Type on these events is not documented (Tyk CONTRACT §1.4).
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", data=json.dumps(SAMPLE),
                           content_type=content_type)
    assert response.status_code == 202


def test_other_events_are_ignored_with_200(client, rt):
    response = post(client, {"event": "key_event.created", "data": {"id": "abc"}})
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert queued_ids(rt) == []


def test_older_underscore_id_is_accepted(client, rt):
    response = post(client, {"event": "key_request_event.submitted", "data": {"_id": REQUEST_ID}})
    assert response.status_code == 202
    assert queued_ids(rt) == [enqueue.decide_job_id(REQUEST_ID)]


def test_put_is_accepted_like_post(client, rt):
    # Tyk's method for org events is undocumented (Tyk CONTRACT §1.4).
    response = client.put(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=SAMPLE)
    assert response.status_code == 202


def test_unknown_paths_and_methods_answer_json_4xx(client):
    assert client.get("/nope").status_code == 404
    response = client.get(f"/hooks/tyk/{WEBHOOK_TOKEN}")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


def test_redis_unreachable_is_503(settings, redis_server):
    from approver.process.embedded_redis import free_port

    down = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(down).test_client()
    response = post(client)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_web_tier_refuses_to_start_without_tokens():
    from approver.errors import ConfigError

    with pytest.raises(ConfigError, match="APPROVER_WEBHOOK_TOKENS"):
        create_app(Settings())
