"""Notifications: event shapes, Standard Webhooks signatures, Slack messages, queueing."""

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from approver.config import Settings
from approver.pipeline import enqueue, notify, runtime
from approver.state import connection
from tests.conftest import run_jobs

SECRET = "whsec_" + base64.b64encode(b"notify-test-secret-0123456789abc").decode()
REQUEST_ID = "64b0000000000000000000c1"
DASHBOARD = "https://dashboard.example.com"


def record(outcome="approve", state="applied", **extra) -> dict:
    """A decision record as decide.apply.record_decision writes it (plus what apply_decision
    adds)."""
    return {
        "state": state, "decision_id": "d" * 32, "outcome": outcome, "rule": "paid-plan",
        "reason": "developer has an active subscription", "revision": "abc123def456",
        "trigger": "webhook", "developer_id": "64b0000000000000000000a4",
        "policies": ["64b0000000000000000000b2"], "decided_at": "2025-01-01T00:00:00.000Z",
        "mode": "enforce", "wait": None, "deadline": "",
        "facts": {"developer.email": "dave@example.com"}, "trace": [{"rule": "x"}],
        "key_ids": ["secret-key-hash"], **extra,
    }


class Receiver:
    """A loopback HTTP server recording what it is sent, answering scripted statuses."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "body": body,
                                          "headers": dict(self.headers.items())})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def nrt(settings, receiver):
    """A runtime whose settings send webhooks and Slack messages to the receiver."""
    current = runtime.Runtime(settings.with_(
        notify_urls=(receiver.url + "/events",), notify_secret=SECRET,
        slack_webhook_url=receiver.url + "/services/T000/B000/slack-token-xyz"))
    runtime.install(current)
    yield current
    runtime.install(None)


def notify_queue(rt):
    return enqueue.notify_queue(rt.queue)


def run_worker(rt):
    """A burst worker on both queues, decisions first, as `approver worker` should run."""
    run_jobs(rt.redis, rt.queue, notify_queue(rt))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- event payloads --------------------------------------------------------------------
@pytest.mark.parametrize(("outcome", "state", "kind"), [
    ("review", "in_review", "key_request.reviewed"),
    ("wait", "waiting", "key_request.waiting"),
    ("approve", "applied", "key_request.approved"),
    ("deny", "applied", "key_request.denied"),
])
def test_event_shape(outcome, state, kind):
    event = notify.events_for(record(outcome, state), DASHBOARD, REQUEST_ID)
    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == kind
    assert event["timestamp"].endswith("Z")
    data = event["data"]
    assert data["key_request_id"] == REQUEST_ID
    assert data["outcome"] == outcome
    assert data["rule"] == "paid-plan"
    assert data["reason"] == "developer has an active subscription"
    assert data["revision"] == "abc123def456"
    assert data["decision_id"] == "d" * 32
    assert data["developer_id"] == "64b0000000000000000000a4"
    assert data["dashboard_url"] == f"{DASHBOARD}/#/portal/requests/{REQUEST_ID}"
    text = json.dumps(event)
    for private in ("facts", "trace", "key_ids", "secret-key-hash", "dave@example.com"):
        assert private not in text


def test_waiting_event_carries_the_deadline():
    rec = record("wait", "waiting", waited_since="2025-01-01T00:00:00.000Z",
                 deadline=1735862400.0, wait={"deadline": 1735862400.0})
    data = notify.events_for(rec, None, REQUEST_ID)["data"]
    assert data["deadline"] == "2025-01-03T00:00:00Z"
    assert data["waiting_since"] == "2025-01-01T00:00:00.000Z"
    assert data["dashboard_url"] is None


def test_new_portal_requests_get_no_dashboard_link():
    rec = record(portal="portal")
    data = notify.events_for(rec, DASHBOARD, "portal-42")["data"]
    assert data["key_request_id"] == "portal-42" and data["portal"] == "portal"
    assert data["dashboard_url"] is None
    assert notify.events_for(record(), DASHBOARD, REQUEST_ID)["data"]["portal"] == "classic"


def test_request_id_may_come_from_the_record():
    event = notify.events_for({**record(), "request_id": REQUEST_ID}, DASHBOARD + "/")
    assert event["data"]["dashboard_url"] == f"{DASHBOARD}/#/portal/requests/{REQUEST_ID}"
    with pytest.raises(ValueError):
        notify.events_for(record(), DASHBOARD)
    with pytest.raises(ValueError):
        notify.events_for(record("skip"), DASHBOARD, REQUEST_ID)


def test_event_ids_follow_the_decision():
    approve = notify.event_id(record(), REQUEST_ID)
    assert approve == notify.event_id(record(state="applying"), REQUEST_ID)
    assert approve != notify.event_id(record(decision_id="e" * 32), REQUEST_ID)
    # A request that still waits is decided again with new decision ids: one event.
    first = record("wait", "waiting", waited_since="2025-01-01T00:00:00.000Z")
    again = {**first, "decision_id": "e" * 32}
    assert notify.event_id(first, REQUEST_ID) == notify.event_id(again, REQUEST_ID)


@pytest.mark.parametrize(("rec", "expected"), [
    (record("approve", "applied"), True),
    (record("approve", "applying"), False),  # recorded, not yet carried out in Tyk
    (record("deny", "failed"), False),
    (record("review", "in_review"), True),
    (record("wait", "waiting"), True),
    (record("approve", "shadowed", mode="shadow"), False),
    (record("review", "shadowed", mode="shadow"), False),
])
def test_which_records_are_news(rec, expected):
    assert notify.wanted(rec, notify.KINDS) is expected


def test_settings_read_with_defaults():
    off = notify.NotifySettings.from_settings(Settings())
    assert not off.enabled and off.on == frozenset(notify.KINDS)
    on = notify.NotifySettings.from_settings(Settings(
        notify_urls=("https://a.example/x?token=t0k3n",), notify_secret=SECRET,
        slack_webhook_url="https://hooks.slack.com/services/T/B/s3cr3t", notify_on=("deny",)))
    assert on.enabled and on.on == {"deny"}
    assert [kind for _, kind, _ in on.destinations()] == ["webhook", "slack"]
    shown = repr(on)
    assert "s3cr3t" not in shown and "t0k3n" not in shown and SECRET not in shown


# -- signing and sending -----------------------------------------------------------------
def test_webhook_verifies_with_the_reference_library(receiver):
    event = notify.events_for(record(), DASHBOARD, REQUEST_ID)
    assert notify.send(receiver.url + "/events", event, "webhook", "evt_1", SECRET) == 200
    [got] = receiver.requests
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(got["body"], got["headers"]) == event
    other = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdefg").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(got["body"], got["headers"])


def test_webhook_needs_a_valid_secret(receiver):
    event = notify.events_for(record(), DASHBOARD, REQUEST_ID)
    for secret in (None, "not-whsec-%%%%", "whsec_", "whsec_%%%%"):
        with pytest.raises(notify.NotifyError) as err:
            notify.send(receiver.url, event, "webhook", "evt_1", secret)
        assert "%%%%" not in str(err.value)  # the secret is never echoed
    assert receiver.requests == []


def test_slack_message_has_reason_and_link(receiver):
    rec = record("deny", reason="email domain <gmail.com> & free plan")
    event = notify.events_for(rec, DASHBOARD, REQUEST_ID)
    notify.send(receiver.url + "/slack", event, "slack", "evt_1")
    [got] = receiver.requests
    assert "webhook-signature" not in {k.lower() for k in got["headers"]}
    message = json.loads(got["body"])
    link = f"{DASHBOARD}/#/portal/requests/{REQUEST_ID}"
    escaped = "email domain &lt;gmail.com&gt; &amp; free plan"
    assert escaped in message["text"] and link in message["text"]
    section = message["blocks"][0]["text"]["text"]
    assert escaped in section and f"<{link}|Key request {REQUEST_ID}>" in section
    assert "was denied" in section
    assert "paid-plan" in message["blocks"][1]["elements"][0]["text"]


def test_non_2xx_raises_so_rq_retries():
    receiver = Receiver([500, 500, 200])
    try:
        event = notify.events_for(record(), DASHBOARD, REQUEST_ID)
        url = receiver.url + "/events?token=t0k3n"
        for _ in range(2):
            with pytest.raises(notify.NotifyError) as err:
                notify.send(url, event, "webhook", "evt_1", SECRET)
            assert "HTTP 500" in str(err.value) and "t0k3n" not in str(err.value)
        assert notify.send(url, event, "webhook", "evt_1", SECRET) == 200
        assert len(receiver.requests) == 3
        ids = {r["headers"]["webhook-id"] for r in receiver.requests}
        assert ids == {"evt_1"}  # a retry is the same message to the receiver
    finally:
        receiver.close()


def test_redirects_are_not_followed(receiver):
    receiver.statuses = [302]
    with pytest.raises(notify.NotifyError, match="HTTP 302"):
        notify.send(receiver.url, {"data": {}}, "slack", "evt_1")


def test_unreachable_receiver_raises_without_the_url():
    url = f"http://127.0.0.1:{free_port()}/services/T/B/s3cr3t"
    with pytest.raises(notify.NotifyError) as err:
        notify.send(url, {"data": {}}, "slack", "evt_1")
    assert "s3cr3t" not in str(err.value) and "ConnectionError" in str(err.value)


# -- queueing ------------------------------------------------------------------------------
def test_enqueue_one_job_per_destination(nrt, receiver):
    queued = notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID)
    assert queued == 2
    queue = notify_queue(nrt)
    assert queue.name == "approver-notify"
    assert len(nrt.queue) == 0 and len(queue) == 2
    for job in queue.jobs:
        assert job.func_name == notify.DELIVER
        assert job.retries_left == 5 and job.retry_intervals == [5, 30, 120, 600, 1800]
        stored = json.dumps(job.args) + (job.description or "")
        # No credential in Redis: not the secret, not the Slack or receiver URL.
        for secret in (SECRET, "slack-token-xyz", receiver.url):
            assert secret not in stored


def test_worker_delivers_both(nrt, receiver):
    notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID)
    run_worker(nrt)
    by_path = {r["path"]: r for r in receiver.requests}
    assert set(by_path) == {"/events", "/services/T000/B000/slack-token-xyz"}
    event = Webhook(SECRET).verify(by_path["/events"]["body"], by_path["/events"]["headers"])
    assert event["type"] == "key_request.approved"
    assert "developer has an active subscription" in json.loads(
        by_path["/services/T000/B000/slack-token-xyz"]["body"])["text"]


def test_failed_delivery_is_scheduled_for_retry(nrt, receiver):
    receiver.statuses = [500, 500]
    notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID)
    run_worker(nrt)
    queue = notify_queue(nrt)
    scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert len(scheduled) == 2
    for job_id in scheduled:
        assert Job.fetch(job_id, connection=nrt.redis, serializer=JSONSerializer
                         ).retries_left == 4


def test_duplicate_enqueue_is_a_no_op(nrt, receiver):
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID) == 2
    # The same decision again (a resumed apply, a redelivered decision job).
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID) == 0
    run_worker(nrt)
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, record(), REQUEST_ID) == 0
    run_worker(nrt)
    assert len(receiver.requests) == 2
    # A new decision for the same request is news again.
    again = record(decision_id="e" * 32)
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, again, REQUEST_ID) == 2


def test_a_request_still_waiting_is_announced_once(nrt):
    first = record("wait", "waiting", waited_since="2025-01-01T00:00:00.000Z")
    again = {**first, "decision_id": "e" * 32}
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, first, REQUEST_ID) == 2
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, again, REQUEST_ID) == 0


def test_nothing_queued_without_destinations(rt):
    assert notify.enqueue_notifications(rt.queue, rt.settings, record(), REQUEST_ID) == 0
    assert len(notify_queue(rt)) == 0


def test_nothing_queued_for_outcomes_not_announced(nrt):
    only_deny = nrt.settings.with_(notify_on=("deny",))
    assert notify.enqueue_notifications(nrt.queue, only_deny, record(), REQUEST_ID) == 0
    assert notify.enqueue_notifications(nrt.queue, nrt.settings,
                                        record(state="applying"), REQUEST_ID) == 0
    assert len(notify_queue(nrt)) == 0
    assert notify.enqueue_notifications(nrt.queue, only_deny, record("deny"), REQUEST_ID) == 2


def test_webhooks_skipped_without_a_secret(nrt):
    unsigned = nrt.settings.with_(notify_secret=None)
    assert notify.enqueue_notifications(nrt.queue, unsigned, record(), REQUEST_ID) == 1
    [job] = notify_queue(nrt).jobs
    assert job.args[2] == "slack"


def test_enqueue_on_a_connection_with_the_queue_name(nrt):
    queued = notify.enqueue_notifications(nrt.redis, nrt.settings, record(), REQUEST_ID)
    assert queued == 2 and len(notify_queue(nrt)) == 2


def test_dead_redis_does_not_raise(nrt, caplog):
    dead = connection.connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        queue = runtime.queue(dead, "approver")
        assert notify.enqueue_notifications(queue, nrt.settings, record(), REQUEST_ID) == 0
        assert notify.enqueue_notifications(dead, nrt.settings, record(), REQUEST_ID) == 0
    finally:
        dead.close()
    assert "not queued" in caplog.text
    assert SECRET not in caplog.text and "slack-token-xyz" not in caplog.text


def test_bad_record_does_not_raise(nrt):
    assert notify.enqueue_notifications(nrt.queue, nrt.settings, record(), None) == 0
    assert notify.enqueue_notifications(nrt.queue, object(), record(), REQUEST_ID) == 0


def test_deliver_drops_a_destination_no_longer_configured(nrt, receiver):
    event = notify.events_for(record(), DASHBOARD, REQUEST_ID)
    assert notify.deliver("0" * 16, event, "webhook", "evt_1")["dropped"] is True
    assert receiver.requests == []


def test_deliver_resolves_and_raises_on_500(nrt, receiver):
    receiver.statuses = [500]
    event = notify.events_for(record(), DASHBOARD, REQUEST_ID)
    destination = notify.ref(receiver.url + "/events")
    with pytest.raises(notify.NotifyError):
        notify.deliver(destination, event, "webhook", "evt_1")
    assert notify.deliver(destination, event, "webhook", "evt_1")["status"] == 200
    Webhook(SECRET).verify(receiver.requests[-1]["body"], receiver.requests[-1]["headers"])


# -- through the real pipeline ---------------------------------------------------------
@pytest.mark.parametrize(("email", "kind"), [
    ("alice@acme.partner.example", "key_request.approved"),
    ("bob@mailinator.com", "key_request.denied"),
    ("carol@gmail.com", "key_request.reviewed"),
])
def test_decisions_are_announced_once_signed_and_on_slack(nrt, sandbox, receiver, email, kind):
    from approver.pipeline import decide

    request = sandbox.app.sandbox.create_key_request(
        email, ["64b0000000000000000000b1"], {"use_case": "x"})
    decide.run(nrt, request["id"], "webhook")
    decide.run(nrt, request["id"], "webhook")  # a second run announces nothing new
    run_worker(nrt)
    events = [r for r in receiver.requests if r["path"] == "/events"]
    slack = [r for r in receiver.requests if r["path"].startswith("/services/")]
    assert len(events) == 1 and len(slack) == 1
    headers = {k.lower(): v for k, v in events[0]["headers"].items()}
    payload = Webhook(SECRET).verify(events[0]["body"], headers)
    assert payload["type"] == kind
    assert payload["data"]["key_request_id"] == request["id"]
    assert nrt.store.state(request["id"])["reason"] in slack[0]["body"].decode()
