"""Sending notifications (runs in a worker): signed Standard Webhooks, Slack messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import requests

from approver.pipeline import runtime
from approver.pipeline.notify.events import (
    SLACK,
    TIMEOUT,
    USER_AGENT,
    WEBHOOK,
    NotifyError,
    NotifySettings,
    url_host,
)
from approver.signing import whsec_key

log = logging.getLogger(__name__)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: its base64 part, decoded."""
    if not secret or not secret.startswith("whsec_"):
        raise NotifyError("APPROVER_NOTIFY_SECRET must start with whsec_")
    key = whsec_key(secret)
    if not key:
        raise NotifyError("APPROVER_NOTIFY_SECRET is not base64 after whsec_")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _escape(text: str) -> str:
    # Slack mrkdwn: these three are the only characters that must be escaped.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_VERBS = {"review": "needs review", "wait": "is waiting", "approve": "was approved",
          "deny": "was denied"}
_ICONS = {"review": ":eyes:", "wait": ":hourglass_flowing_sand:",
          "approve": ":white_check_mark:", "deny": ":no_entry:"}


def slack_message(event: dict) -> dict:
    """A Slack-compatible incoming-webhook message: text fallback plus blocks."""
    data = event.get("data") or {}
    outcome = data.get("outcome") or ""
    request_id = data.get("key_request_id") or "?"
    verb = _VERBS.get(outcome, outcome)
    reason = data.get("reason") or "(no reason given)"
    link = data.get("dashboard_url")
    text = f"Key request {request_id} {verb}: {reason}"
    if link:
        text += f" ({link})"
    title = f"<{link}|Key request {request_id}>" if link else f"Key request {request_id}"
    heading = f"{_ICONS.get(outcome, '')} *{title}* {_escape(verb)}".strip()
    context = [f"Outcome: *{_escape(outcome)}*"]
    if data.get("rule"):
        context.append(f"Rule: `{_escape(data['rule'])}`")
    if data.get("revision"):
        context.append(f"Rules revision: `{_escape(str(data['revision'])[:12])}`")
    if data.get("developer_id"):
        context.append(f"Developer: `{_escape(data['developer_id'])}`")
    if data.get("deadline"):
        context.append(f"Deadline: {_escape(data['deadline'])}")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"{heading}\n>{_escape(reason)}"[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
    ]
    return {"text": _escape(text)[:3000], "blocks": blocks}


def send(url: str, event: dict, kind: str, event_id: str, secret: str | None = None) -> int:
    """POST one notification; return the status, or raise NotifyError (RQ then retries)."""
    host = url_host(url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if kind == WEBHOOK:
        if not secret:
            raise NotifyError("APPROVER_NOTIFY_SECRET is not set: webhook not signed")
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time())
        headers.update({
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event_id, timestamp, body),
        })
    elif kind == SLACK:
        body = json.dumps(slack_message(event), separators=(",", ":")).encode()
    else:
        raise NotifyError(f"unknown notification kind {kind!r}")
    try:
        # No redirects: a receiver moving is an error to see, not a place to follow.
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        # requests' messages carry the URL (a Slack URL is a credential): name the class.
        raise NotifyError(f"{kind} notification to {host} failed: {type(exc).__name__}") \
            from None
    if not 200 <= response.status_code < 300:
        raise NotifyError(f"{kind} notification to {host} answered HTTP "
                          f"{response.status_code}")
    return response.status_code


def deliver(destination: str, event: dict, kind: str, event_id: str) -> dict:
    """RQ job: send one event to one destination (named by `ref`); raise so RQ retries."""
    notify = NotifySettings.from_settings(runtime.current().settings)
    found = notify.resolve(destination)
    if found is None:
        # Configuration changed since the job was queued: nowhere to send it any more.
        log.warning("notification %s: destination %s is no longer configured; dropped",
                    event_id, destination)
        return {"destination": destination, "dropped": True}
    found_kind, url = found
    if found_kind != kind:
        raise NotifyError(f"destination {destination} is a {found_kind}, not a {kind}")
    status = send(url, event, kind, event_id, notify.secret)
    log.info("notification %s (%s) delivered to %s: HTTP %d", event_id, event.get("type"),
             url_host(url), status)
    return {"destination": destination, "status": status}
