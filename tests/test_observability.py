"""Metrics, readiness and logs: what an operator scrapes and reads."""

import json
import logging

import pytest
import requests

from approver import logs
from approver.pipeline import health, metrics, runtime
from approver.process.embedded_redis import free_port
from approver.web import create_app
from tests.conftest import WEBHOOK_TOKEN
from tests.test_backlog import commands
from tests.web_support import Web

ALICE, BOB = "alice@acme.partner.example", "bob@mailinator.com"
FREE = "64b0000000000000000000b1"
# The internal listener: /metrics and the details of /readyz are served there only.
INTERNAL = "http://localhost:9100"


@pytest.fixture
def app(settings):
    """The web app with an internal listener on port 9100."""
    return create_app(settings.with_(internal_bind="127.0.0.1:9100"))


def scrape(client) -> str:
    response = client.get("/metrics", base_url=INTERNAL)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r} in metrics")


def test_metrics_show_webhooks_queue_decisions_and_latency(client, sandbox, rt, work):
    before = scrape(client)
    requests = [sandbox.app.sandbox.create_key_request(e, [FREE], {"use_case": "x"})
                for e in (ALICE, BOB)]
    for request in requests:
        client.post(f"/hooks/tyk/{WEBHOOK_TOKEN}",
                    json={"event": "key_request_event.submitted", "data": request})
    client.post("/hooks/tyk/wrong-token-0123456789abc", json={})
    mid = scrape(client)
    assert value(mid, 'approver_queue_depth{queue="approver"}') == 2
    assert value(mid, 'approver_queue_oldest_job_age_seconds{queue="approver"}') >= 0
    accepted = 'approver_webhooks_received_total{code="202",source="tyk"}'
    refused = 'approver_webhooks_received_total{code="401",source="tyk"}'
    counted = value(mid, accepted) - (value(before, accepted) if accepted in before else 0)
    assert counted == 2
    assert value(mid, refused) >= 1
    work()
    after = scrape(client)
    assert value(after, 'approver_queue_depth{queue="approver"}') == 0
    assert value(after, 'approver_decisions_total{outcome="approve",rule="partners"}') == 1
    assert value(after, 'approver_decisions_total{outcome="deny",rule="deny-disposable-email"}') \
        == 1
    assert value(after, "approver_webhook_to_applied_seconds_count") == 2
    assert value(after, 'approver_webhook_to_applied_seconds_bucket{le="+Inf"}') == 2
    assert value(after, "approver_waiting_requests") == 0
    assert value(after, "approver_redis_up") == 1


@pytest.mark.parametrize(("path", "source", "code"), [
    ("/hooks/portal", "portal", "401"), ("/hooks/portal/wrong-token", "portal", "401"),
    ("/billing/checkout-state", "billing", "404"), ("/billing/events", "billing", "404"),
])
def test_portal_webhooks_and_checkout_states_are_counted_by_their_source(client, path,
                                                                         source, code):
    counted = metrics.WEBHOOKS.labels(source, code)
    unknown = metrics.WEBHOOKS.labels("unknown", code)
    before, unknown_before = counted._value.get(), unknown._value.get()
    assert client.post(path, json={}).status_code == int(code)
    assert counted._value.get() == before + 1
    assert unknown._value.get() == unknown_before


def test_dashboard_calls_are_counted_by_route_and_status(rt, sandbox):
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    before = metrics.DASHBOARD_CALLS.labels("GET", "/api/portal/requests/{id}", "200")._value.get()
    rt.dashboard.get_key_request(request["id"])
    after = metrics.DASHBOARD_CALLS.labels("GET", "/api/portal/requests/{id}", "200")._value.get()
    assert after == before + 1


@pytest.mark.parametrize("path,template", [
    ("/api/portal/requests/approve/64b000000000000000000101", "/api/portal/requests/approve/{id}"),
    ("/api/portal/developers/email/a%40b.c", "/api/portal/developers/email/{id}"),
    ("/api/portal/developers/64b0000000000000000000a4/keys/5d0c6b1e7a9f3c24",
     "/api/portal/developers/{id}/keys/{id}"),
    ("/api/portal/requests", "/api/portal/requests"),
    ("/api/portal/policies/pol1", "/api/portal/policies/{id}"),
    ("/api/portal/developers/email/a%40b.c", "/api/portal/developers/email/{id}"),
    ("/portal-api/apps/12/access-requests/7", "/portal-api/apps/{id}/access-requests/{id}"),
])
def test_dashboard_routes_are_templated(path, template):
    assert metrics.route(path.replace("%40", "@")) == template


def test_readyz_reports_what_workers_saw(client, rt, sandbox):
    response = client.get("/readyz", base_url=INTERNAL)
    assert response.status_code == 200
    assert response.json["status"] == "degraded"  # no worker has reported yet
    assert response.json["workers"] == "no worker has reported recently"
    health.publish_health(rt)
    body = client.get("/readyz", base_url=INTERNAL).json
    assert body == {**body, "status": "ok", "redis": "ok", "dashboard": "ok", "rules": "ok"}
    assert body["rules_revision"] == rt.rules.current().revision


def test_readyz_says_when_the_dashboard_is_down(client, rt, settings):
    down = runtime.Runtime(settings.with_(dashboard_url="http://127.0.0.1:9",
                                          dashboard_timeout=0.2))
    down.store  # noqa: B018 (same Redis)
    health.publish_health(down)
    body = client.get("/readyz", base_url=INTERNAL).json
    assert body["status"] == "degraded"
    assert "GET /api/portal/configuration" in body["dashboard"]


def test_json_log_lines_carry_the_ids(capsys):
    logs.setup("INFO", json_lines=True)
    try:
        with logs.bound(key_request_id="kr1", decision_id="d1"):
            logging.getLogger("approver.test").info("decided %s via /hooks/tyk/%s", "x",
                                                    "secret-token-123456")
    finally:
        logging.getLogger().handlers[:] = [
            h for h in logging.getLogger().handlers if not getattr(h, "approver", False)]
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["key_request_id"] == "kr1" and line["decision_id"] == "d1"
    assert line["msg"] == "decided x via /hooks/tyk/[redacted]"
    assert line["level"] == "info" and line["logger"] == "approver.test"


def test_answers_carry_a_request_id(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert generated.headers["X-Request-Id"] != "bad id <script>"
    assert len(generated.headers["X-Request-Id"]) == 32


def test_grafana_dashboard_queries_only_metrics_we_export(client, rt):
    import re

    from tests.conftest import ROOT

    health.publish_health(rt)
    declared = set(re.findall(r"^# TYPE ([a-z_]+) ", scrape(client), re.M))
    exported = declared | {f"{name}_total" for name in declared}
    exported |= {"approver_dashboard_calls_total", "approver_dashboard_call_seconds"}
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    used = {name.removesuffix("_bucket")
            for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"approver_[a-z_]+", target["expr"])}
    assert used and used <= exported, used - exported


# -- metrics and details for operators only; labels that stay few ----------------------------

def test_metrics_are_not_served_on_the_public_listener(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert b"approver_" not in response.data


def test_public_readyz_says_only_whether_it_is_ready(client, rt):
    rt.store.publish_health(rules_error="/etc/tyk-approver/rules/10-block.yaml:3: bad",
                         dashboard="GET /api/portal/configuration: 401 secret-ish")
    public = client.get("/readyz")
    assert public.status_code == 200 and public.json == {"status": "degraded"}
    internal = client.get("/readyz", base_url=INTERNAL).json
    assert "10-block.yaml" in internal["rules"] and "401" in internal["dashboard"]


def test_readyz_reads_redis_once(client, rt, redis_conn):
    client.get("/readyz")  # the connection is made before counting
    before = commands(redis_conn)
    assert client.get("/readyz").status_code == 200
    assert commands(redis_conn) - before == 1  # the health read: it proves Redis answers


def test_without_an_internal_listener_nothing_is_detailed(settings, rt):
    client = create_app(settings).test_client()
    assert client.get("/metrics", base_url=INTERNAL).status_code == 404
    assert set(client.get("/readyz", base_url=INTERNAL).json) == {"status"}


def test_explicit_decisions_count_in_one_series_whatever_the_event(client, rt):
    for event in ("msg_1", "msg_2", "evt_3"):
        metrics.count_decision(rt.redis, "approve", f"explicit:billing:{event}")
    # A count written per event id before labels were bounded folds in too.
    rt.redis.hincrby(metrics.DECISIONS_KEY, "approve|explicit:billing:msg_old", 2)
    text = scrape(client)
    assert value(text, 'approver_decisions_total{outcome="approve",rule="explicit:billing"}') == 5
    assert "msg_" not in text and "evt_" not in text


def test_gunicorn_serves_metrics_on_the_internal_listener_only(settings, tmp_path):
    port = free_port()
    web = Web(settings, tmp_path, APPROVER_INTERNAL_BIND=f"127.0.0.1:{port}").start()
    try:
        assert requests.get(f"{web.url}/metrics", timeout=5).status_code == 404
        # The Host header does not make the public listener the internal one.
        spoofed = requests.get(f"{web.url}/metrics", timeout=5,
                               headers={"Host": f"127.0.0.1:{port}"})
        assert spoofed.status_code == 404
        assert set(requests.get(f"{web.url}/readyz", timeout=5).json()) == {"status"}
        internal = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert internal.status_code == 200 and "approver_redis_up 1.0" in internal.text
        assert "redis" in requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
    finally:
        web.stop()
