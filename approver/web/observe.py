"""Per-request ids in logs and answers, and the count of inbound webhooks by answer."""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from approver import logs
from approver.pipeline import metrics

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Endpoint name -> the source label of approver_webhooks_received_total.
SOURCES = {"hooks.tyk": "tyk", "portal_hooks.portal": "portal", "billing.receive": "billing",
           "billing.checkout_state": "billing", "handoff.handoff": "handoff",
           "slack_hooks.interactive": "slack"}


def init_app(app: Flask) -> None:
    """Give every request an id (a sane X-Request-Id is kept) and count webhooks."""

    @app.before_request
    def request_id():
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        logs.bind(request_id=g.request_id)

    @app.after_request
    def count(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        source = SOURCES.get(request.endpoint or "")
        if source is None and request.path.startswith(("/hooks/", "/billing/")):
            source = "unknown"
        if source and request.method != "HEAD":
            metrics.WEBHOOKS.labels(source, str(response.status_code)).inc()
        return response
