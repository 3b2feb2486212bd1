"""Hostile input on every HTTP endpoint and on `approver rules check`: never a 5xx, never a
traceback, errors as JSON, nothing queued unless the webhook was well-formed and authenticated.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as s
from rq.job import Job
from rq.serializers import JSONSerializer

from approver import cli
from approver.web import create_app
from approver.web.schemas import first_error
from tests.conftest import WEBHOOK_TOKEN
from tests.test_billing_intake import STRIPE_SECRET, standard_headers, stripe_headers

BILLING_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SETTINGS = settings(
    max_examples=100, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

json_scalars = (s.none() | s.booleans() | s.integers() | s.floats(allow_nan=False)
                | s.text(max_size=40))
json_values = s.recursive(
    json_scalars,
    lambda inner: s.lists(inner, max_size=5) | s.dictionaries(s.text(max_size=10), inner,
                                                              max_size=5),
    max_leaves=30,
)
weird_text = s.sampled_from([
    "\x00", "a\x00b", "\u202e\u200fevil", "\ud800", "\udfff", "\U0001f600" * 3, "\ufeff",
    "key_request_event.submitted\x00", "key_request_event.\u202e", "..", "%00", "\r\n",
    "a" * 300, "\u0000" * 10, "\U0001d55c\U0001d556\U0001d56a", "\u0085", "\u2028",
    "\n", "abc\n", "\u2029", "\x1b[2J", "\x7f", "\x9b", "\t", "\x0b\x0c",
]) | s.text(max_size=50) | s.text(
    alphabet=s.characters(categories=["Cc", "Zl", "Zp", "Cf"]), max_size=8)
content_types = s.sampled_from([
    None, "application/json", "text/plain", "application/json; charset=utf-16",
    "application/vnd.tyk+json", "application/x-www-form-urlencoded", "multipart/form-data",
    "multipart/form-data; boundary=x", "text/html", "application/xml", "*/*", "",
    "application/json; charset=\u00e9", "application/json\r\nX-Injected: 1",
]) | s.text(max_size=40)
header_values = weird_text | s.text(alphabet=s.characters(codec="latin-1"), max_size=60)


def deep(n: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * n + closer * n).encode()


bodies = s.one_of(
    s.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    s.builds(lambda e, d: json.dumps({"event": e, "data": d}).encode(), json_values, json_values),
    s.builds(lambda e, i: json.dumps({"event": e, "data": {"id": i}}).encode(),
             weird_text | json_values, weird_text | json_values),
    s.builds(lambda i: json.dumps({"event": "key_request_event.submitted",
                                   "data": {"_id": i, "id": None}}).encode(),
             weird_text | json_values),
    s.integers(1, 200_000).map(deep),
    s.integers(1, 200_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    s.integers(60_000, 300_000).map(
        lambda n: json.dumps({"event": "key_request_event.submitted",
                              "data": {"id": "x" * n}}).encode()),
    s.integers(1, 100_000).map(lambda n: b'"' + b"\\ud800" * n + b'"'),
    s.sampled_from([b"", b"null", b"{}", b"[]", b'{"event":', b"\xff\xfe{}", b"\x00" * 10,
                    b'{"event":"key_request_event.x","data":{"id":"\\u0000"}}',
                    b'{"event":"key_request_event.x","data":{"id":"abc\\ud800"}}',
                    b'{"event":"key_request_event.x","data":{"id":"abc","id":"def"}}',
                    b'{"event":1e999,"data":{"id":"abc"}}', b"NaN", b"Infinity"]),
)


def queued_jobs(conn) -> list[bytes]:
    return sorted(conn.scan_iter(match=b"rq:job:*", count=1000))


def queued_args(conn) -> list[list]:
    """The arguments of every queued job."""
    return [Job.fetch(key.decode().removeprefix("rq:job:"), connection=conn,
                      serializer=JSONSerializer).args for key in queued_jobs(conn)]


@pytest.fixture
def billing_client(settings):
    """The web app with the billing endpoint's secret configured."""
    return create_app(settings.with_(billing_secrets=(BILLING_SECRET,))).test_client()


@pytest.fixture
def endpoints(app):
    """Every route the app has at the time the test runs (but static files)."""
    return sorted(
        (rule.rule, tuple(sorted(rule.methods - {"OPTIONS"})))
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
    )


def check_answer(response, caplog, json_errors: bool = True):
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    if json_errors and response.status_code >= 400 and response.request.method != "HEAD":
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and set(body) == {"error"}, response.get_data()[:300]
        assert isinstance(body["error"].get("code"), str)
        assert isinstance(body["error"].get("message"), str)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text[-2000:]


def _open(client, method, path, body=None, content_type=None, environ=None):
    return client.open(path, method=method, data=body, content_type=content_type,
                       environ_overrides=environ or {})


@SETTINGS
@given(body=bodies, content_type=content_types, with_token=s.booleans(),
       method=s.sampled_from(["POST", "PUT"]))
def test_tyk_webhook_never_fails_on_hostile_bodies(client, redis_conn, caplog, body,
                                                   content_type, with_token, method):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    token = WEBHOOK_TOKEN if with_token else "not-the-token-0123456789"
    try:
        response = _open(client, method, f"/hooks/tyk/{token}", body, content_type)
    except ValueError:
        # The test client refuses a header value with a newline before sending anything;
        # a real server never passes one on either.
        assume(False)
    check_answer(response, caplog)
    if queued_jobs(redis_conn):
        # Queued: so it must have been authenticated, JSON, the right shape, a key request.
        assert with_token and response.status_code == 202
        document = json.loads(body)
        assert first_error("tyk-webhook", document) is None
        assert document["event"].startswith("key_request_event.")


@SETTINGS
@given(header=s.sampled_from(["HTTP_AUTHORIZATION", "HTTP_X_APPROVER_TOKEN", "CONTENT_TYPE",
                              "HTTP_CONTENT_ENCODING", "HTTP_TRANSFER_ENCODING",
                              "CONTENT_LENGTH", "HTTP_HOST", "HTTP_X_FORWARDED_FOR"]),
       value=header_values, prefix=s.sampled_from(["", "Bearer ", "bearer\t", "Bearer\r\n"]),
       well_formed=s.booleans())
def test_hostile_header_values_including_cr_lf(client, redis_conn, caplog, header, value,
                                              prefix, well_formed):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    body = json.dumps({"event": "key_request_event.submitted",
                       "data": {"id": "64b0000000000000000000ff"}}).encode()
    if not well_formed:
        body = body[:-3]
    environ = {header: prefix + value}
    if header == "CONTENT_LENGTH":
        environ[header] = value  # a content length that is no number, or lies
    response = _open(client, "POST", "/hooks/tyk", body, "application/json", environ)
    check_answer(response, caplog)
    jobs = queued_jobs(redis_conn)
    authenticated = (header == "HTTP_AUTHORIZATION" and prefix.lower().startswith("bearer")
                     and (prefix[7:] + value).strip() == WEBHOOK_TOKEN) or (
        header == "HTTP_X_APPROVER_TOKEN" and prefix + value == WEBHOOK_TOKEN)
    assert not jobs or authenticated, (header, prefix + value, response.status_code)


@SETTINGS
@given(path=s.lists(weird_text | s.text(alphabet="/.%?#;&=+ \\", max_size=10), max_size=4),
       method=s.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                              "TRACE", "PROPFIND"]),
       body=s.binary(max_size=200))
def test_random_paths_under_hooks(client, redis_conn, caplog, path, method, body):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    raw = "/hooks/" + "/".join(quote(p.encode("utf-8", "surrogatepass"), safe="/") for p in path)
    response = _open(client, method, raw, body, "application/json")
    check_answer(response, caplog)
    assert queued_jobs(redis_conn) == []


@SETTINGS
@given(data=s.data())
def test_every_endpoint_survives_hostile_requests(client, redis_conn, caplog, endpoints, data):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    rule, methods = data.draw(s.sampled_from(endpoints), label="route")
    method = data.draw(s.sampled_from([*methods, "DELETE", "PATCH"]), label="method")
    segment = data.draw(weird_text, label="segment")
    path = rule.replace("<path:token>", quote(segment.encode("utf-8", "surrogatepass")))
    path = path.replace("<token>", quote(segment.encode("utf-8", "surrogatepass"), safe=""))
    query = data.draw(s.dictionaries(s.text(max_size=8), weird_text, max_size=3), label="query")
    body = data.draw(bodies, label="body")
    content_type = data.draw(content_types, label="content type")
    try:
        response = client.open(path, method=method, data=body, content_type=content_type,
                               query_string={k: v.encode("utf-8", "surrogatepass")
                                             for k, v in query.items()})
    except ValueError:
        assume(False)  # the test client refused a header value with a newline
    # The hand-off, status and console pages are HTML for people; the rest answers JSON.
    json_errors = not rule.startswith(("/handoff", "/status", "/console"))
    check_answer(response, caplog, json_errors=json_errors)
    assert queued_jobs(redis_conn) == []


@SETTINGS
@given(body=bodies, content_type=content_types,
       signature=s.sampled_from([None, "v1,AAAA", "v1," + "A" * 88, "garbage", "v1,\x00",
                                 "t=1,v1=abc"]) | weird_text,
       msg_id=s.none() | weird_text, timestamp=s.none() | weird_text | s.integers().map(str))
def test_billing_events_never_fail_on_hostile_input(billing_client, endpoints, redis_conn, caplog,
                                                   body, content_type, signature, msg_id,
                                                   timestamp):
    assume(any(rule == "/billing/events" for rule, _ in endpoints))
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    environ = {}
    for name, value in (("HTTP_WEBHOOK_SIGNATURE", signature), ("HTTP_WEBHOOK_ID", msg_id),
                        ("HTTP_WEBHOOK_TIMESTAMP", timestamp),
                        ("HTTP_STRIPE_SIGNATURE", signature)):
        if value is not None:
            environ[name] = value
    try:
        response = _open(billing_client, "POST", "/billing/events", body, content_type, environ)
    except ValueError:
        assume(False)
    check_answer(response, caplog)
    assert queued_jobs(redis_conn) == []  # nothing signed with our secret, nothing queued


def test_a_well_formed_authenticated_webhook_is_queued(client, redis_conn):
    """The oracle of the tests above really sees a queued job."""
    body = {"event": "key_request_event.submitted", "data": {"id": "64b0000000000000000000ff"}}
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json=body)
    assert response.status_code == 202
    assert queued_jobs(redis_conn) == [b"rq:job:kr-64b0000000000000000000ff"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer(client, path):
    assert client.get(path).status_code == 200


# -- `approver rules check` on hostile files -------------------------------------------------

yaml_keys = s.sampled_from(["rules", "id", "when", "then", "default", "outcome", "all", "any",
                            "not", "fact", "equals", "in", "matches", "reason", "version",
                            "wait", "timeout", "on_timeout", "exists", "tests"]) | s.text(
    max_size=8)
yaml_values = s.recursive(
    json_scalars | s.dates() | s.binary(max_size=10),
    lambda inner: s.lists(inner, max_size=4) | s.dictionaries(yaml_keys, inner, max_size=4),
    max_leaves=25,
)
yamlish_text = s.one_of(
    s.text(max_size=400),
    s.lists(s.sampled_from([
        "rules:", "  - id: x", "    when:", "      fact: developer.email_domain",
        "      equals: [", "    then: approve", "default: review", "!!python/object:os.system",
        "&a [*a]", "*undefined", "? complex key", "--- ", "...", "%YAML 9.9", "\t- tab",
        "key: !!binary AAAA", "x: !!float nan", "- &anchor {a: *anchor}", "{{{{", "]]]]",
        "rules: !!set {a, b}", "  matches: '(a+)+$'", "  matches: '['", "\x00", "\ud800",
        "a: 1\na: 2", "<<: *x", "rules: [" * 50,
    ]), max_size=15).map("\n".join),
    # Nesting within and beyond the limit that `rules check` reports as a problem.
    s.integers(1, 300).map(lambda n: "a: " + "[" * n + "]" * n),
    s.integers(1, 250).map(lambda n: "".join(f"{' ' * 2 * i}k{i}:\n" for i in range(n))),
    s.integers(1, 100).map(lambda n: "rules:\n  - id: x\n    when: " + "{all: [" * n
                           + "]}" * n + "\n    then: approve\n"),
)


def _rules_check(text: str | None, raw: bytes | None, capsys) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        status = cli.main(["rules", "check", str(path)])
    out, err = capsys.readouterr()
    assert status in (0, 1), (status, out[-500:], err[-500:])
    assert "Traceback" not in out + err
    return status


@SETTINGS
@given(text=yamlish_text)
def test_rules_check_on_random_yamlish_text(capsys, text):
    _rules_check(text, None, capsys)


@SETTINGS
@given(document=yaml_values)
def test_rules_check_on_random_structures_dumped_as_yaml(capsys, document):
    _rules_check(yaml.safe_dump(document, allow_unicode=True), None, capsys)


@SETTINGS
@given(raw=s.binary(max_size=500))
def test_rules_check_on_random_bytes(capsys, raw):
    _rules_check(None, raw, capsys)


@pytest.mark.parametrize("text", [
    pytest.param("a: " + "[" * 2000 + "]" * 2000, id="flow-2000"),
    pytest.param("".join(f"{'  ' * i}k{i}:\n" for i in range(1000)), id="block-1000"),
    pytest.param("rules:\n  - id: x\n    when: " + "{all: [" * 300 + "]}" * 300
                 + "\n    then: approve\n", id="conditions-300"),
])
def test_rules_check_on_deep_nesting(capsys, text):
    assert _rules_check(text, None, capsys) == 1


# -- every string the outside world sends is checked whole; times stay in a sane window -------

REQUEST = "64b0000000000000000000ff"
DEVELOPER = "5e430ef68131890001b83d2e"
# What `$` let through (a trailing newline) and its cousins: other line breaks, NUL, escapes.
TAILS = ["\n", "\r\n", "\r", "\x00", "\x0b", "\x1b[2J", "\x85", "\u2028"]
EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                 "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z"]
BILLING_STATUS = {"developer_id": DEVELOPER, "status": "active", "plan": "pro",
                  "occurred_at": "2026-11-23T10:00:00Z"}
DECISION = {"key_request_id": REQUEST, "decision": "approve", "reason": "paid invoice 1"}


@pytest.fixture
def signed_client(settings):
    """The web app taking billing events signed with our secret or Stripe's scheme."""
    return create_app(settings.with_(billing_secrets=(BILLING_SECRET,),
                                     stripe_secrets=(STRIPE_SECRET,))).test_client()


def post_signed(client, document, stripe: bool = False):
    raw = json.dumps(document).encode()
    headers = stripe_headers(raw) if stripe else standard_headers(raw, secret=BILLING_SECRET)
    return client.post("/billing/events", data=raw, headers=headers,
                       content_type="application/json")


def stripe_event(created=1_795_000_000, event_id="evt_1", metadata=None, nickname="Pro"):
    return {"id": event_id, "type": "customer.subscription.updated", "created": created,
            "data": {"object": {"status": "active",
                                "metadata": metadata or {"tyk_developer_id": DEVELOPER},
                                "items": {"data": [{"price": {"id": "price_1",
                                                              "nickname": nickname}}]}}}}


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("field", ["id", "_id"])
def test_webhook_id_with_a_trailing_line_break_or_control_is_400(client, redis_conn, caplog,
                                                                field, tail):
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json={
        "event": "key_request_event.submitted", "data": {field: REQUEST + tail}})
    check_answer(response, caplog)
    assert response.status_code == 400
    assert queued_jobs(redis_conn) == []


@pytest.mark.parametrize("request_id", ["abc", "x" * 24, REQUEST.upper(), REQUEST + "0",
                                        "portal-12", "../" + REQUEST[3:]])
def test_webhook_id_that_is_not_a_tyk_object_id_is_400(client, redis_conn, request_id):
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json={
        "event": "key_request_event.submitted", "data": {"id": request_id}})
    assert response.status_code == 400
    assert queued_jobs(redis_conn) == []


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("kind,data,field", [
    ("billing.status", BILLING_STATUS, "developer_id"),
    ("billing.status", {**BILLING_STATUS, "developer_email": "d@example.com"},
     "developer_email"),
    ("billing.status", BILLING_STATUS, "plan"),
    ("key_request.decision", DECISION, "key_request_id"),
    ("key_request.decision", DECISION, "reason"),
])
def test_billing_field_with_a_line_break_or_control_is_400(signed_client, redis_conn, caplog,
                                                          kind, data, field, tail):
    response = post_signed(signed_client, {"type": kind, "data": {**data,
                                                                  field: data[field] + tail}})
    check_answer(response, caplog)
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["message"]
    assert queued_jobs(redis_conn) == []


@pytest.mark.parametrize("moment", EXTREME_TIMES)
def test_billing_event_outside_a_sane_time_window_is_400(signed_client, redis_conn, caplog,
                                                        moment):
    response = post_signed(signed_client, {"type": "billing.status",
                                           "data": {**BILLING_STATUS, "occurred_at": moment}})
    check_answer(response, caplog)
    assert response.status_code == 400
    assert "occurred_at" in response.json["error"]["message"]
    assert queued_jobs(redis_conn) == []


@pytest.mark.parametrize("created", [0, 1, 253402300799, 10**12, 2**63])
def test_stripe_event_outside_a_sane_time_window_is_400(signed_client, redis_conn, created):
    response = post_signed(signed_client, stripe_event(created=created), stripe=True)
    assert response.status_code == 400
    assert "created" in response.json["error"]["message"]
    assert queued_jobs(redis_conn) == []


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("change", [
    {"event_id": "evt_1{tail}"},
    {"metadata": {"tyk_developer_id": DEVELOPER + "{tail}"}},
    {"metadata": {"tyk_developer_email": "d@example.com{tail}"}},
])
def test_stripe_ids_with_a_line_break_or_control_are_400(signed_client, redis_conn, change,
                                                        tail):
    filled = json.loads(json.dumps(change).replace("{tail}", json.dumps(tail)[1:-1]))
    response = post_signed(signed_client, stripe_event(**filled), stripe=True)
    assert response.status_code == 400
    assert queued_jobs(redis_conn) == []


def test_stripe_plan_name_with_control_characters_falls_back_to_the_price_id(signed_client,
                                                                            redis_conn):
    assert post_signed(signed_client, stripe_event(nickname="Pro\n\x1b[2J"),
                       stripe=True).status_code == 202
    ((event,),) = queued_args(redis_conn)
    assert event["data"]["plan"] == "price_1"


@pytest.mark.parametrize("given_id", [f"abc{tail}" for tail in TAILS] + ["a" * 65, "a b"])
def test_odd_x_request_id_is_replaced(client, given_id):
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": given_id})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


# Line breaks, controls and escapes alone, after and inside a valid value; times at the ends
# of the calendar and with the widest offsets.
hostile_tails = s.sampled_from(TAILS) | s.text(
    alphabet=s.characters(categories=["Cc", "Zl", "Zp", "Cf"]), min_size=1, max_size=3)
extreme_times = s.builds(
    lambda moment, minutes: moment.isoformat() + ("Z" if minutes is None else
                                                   f"{'+-'[minutes < 0]}{abs(minutes) // 60:02}"
                                                   f":{abs(minutes) % 60:02}"),
    s.datetimes(), s.none() | s.integers(-14 * 60, 14 * 60))


def hostile(value) -> s.SearchStrategy:
    """`value` as sent, or spoiled: a line break or control after it, inside it, or alone."""
    text = str(value)
    return (s.just(value) | s.builds(lambda t: text + t, hostile_tails)
            | s.builds(lambda i, t: text[:i] + t + text[i:], s.integers(0, len(text)),
                       hostile_tails)
            | hostile_tails | weird_text)


status_documents = s.fixed_dictionaries({
    "type": s.just("billing.status"),
    "data": s.fixed_dictionaries({
        "developer_id": hostile(DEVELOPER), "status": hostile("active"),
        "plan": s.none() | hostile("pro"),
        "occurred_at": hostile("2026-11-23T10:00:00Z") | extreme_times,
    }, optional={"developer_email": hostile("d@example.com")}),
})
decision_documents = s.fixed_dictionaries({
    "type": s.just("key_request.decision"),
    "data": s.fixed_dictionaries({
        "key_request_id": hostile(REQUEST), "decision": hostile("approve"),
    }, optional={"reason": s.none() | hostile("paid invoice 1")}),
})
stripe_documents = s.builds(
    lambda event_id, created, developer, email, nickname: stripe_event(
        created=created, event_id=event_id, nickname=nickname,
        metadata={"tyk_developer_id": developer, "tyk_developer_email": email}),
    hostile("evt_1"), s.integers(-2**40, 2**70) | s.just(1_795_000_000),
    hostile(DEVELOPER), hostile("d@example.com"), hostile("Pro"))
CLEAN = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@SETTINGS
@given(document=status_documents | decision_documents | stripe_documents)
def test_signed_billing_events_with_hostile_fields_and_times(signed_client, redis_conn, caplog,
                                                             document):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    response = post_signed(signed_client, document, stripe="created" in document)
    check_answer(response, caplog)
    for (event,) in queued_args(redis_conn):
        # Queued: every string in the job is clean and every time in the window.
        assert all(CLEAN.fullmatch(text) for text in strings(event)), event
        occurred = event["data"].get("occurred_at")
        if occurred:
            assert "2000-01-01" <= occurred <= datetime.now(UTC).isoformat()[:10] + "T23"


@SETTINGS
@given(field=s.sampled_from(["id", "_id"]), request_id=hostile(REQUEST))
def test_tyk_webhook_ids_with_hostile_characters(client, redis_conn, caplog, field, request_id):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    response = client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}", json={
        "event": "key_request_event.submitted", "data": {field: request_id}})
    check_answer(response, caplog)
    assert (response.status_code == 202) == (request_id == REQUEST)
    assert queued_jobs(redis_conn) == ([b"rq:job:kr-" + REQUEST.encode()]
                                       if request_id == REQUEST else [])


@SETTINGS
@given(name=s.sampled_from(["key_request_id", "id", "request_id", "key_request"]),
       request_id=hostile(REQUEST), method=s.sampled_from(["GET", "POST"]),
       request_header=hostile("abc-123"))
def test_handoff_parameters_and_request_ids_with_hostile_characters(client, redis_conn, caplog,
                                                                    name, request_id, method,
                                                                    request_header):
    caplog.set_level(logging.INFO)
    caplog.clear()
    redis_conn.flushdb()
    raw = request_id.encode("utf-8", "surrogatepass")
    try:
        response = client.open("/handoff", method=method,
                               query_string={name: raw} if method == "GET" else None,
                               data={name: raw} if method == "POST" else None,
                               environ_overrides={"HTTP_X_REQUEST_ID": request_header})
    except ValueError:
        assume(False)  # the test client refused a value it cannot send
    check_answer(response, caplog, json_errors=False)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", response.headers["X-Request-Id"])
    queued = queued_jobs(redis_conn)
    assert queued == ([b"rq:job:kr-" + REQUEST.encode()] if request_id == REQUEST else [])
