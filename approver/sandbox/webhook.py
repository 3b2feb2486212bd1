"""The Dashboard's key-request webhook: one POST in the background, no retry."""

from __future__ import annotations

import json
import logging
import threading

import requests

log = logging.getLogger(__name__)

EVENT = "key_request_event.submitted"
# Tyk CONTRACT §1.4: the only public Tyk webhook code makes one attempt with a 30 s
# client timeout and never retries; delivery is at-most-once.
TIMEOUT = 30.0
HEADERS = {"Content-Type": "application/json", "User-Agent": "Tyk-Hookshot"}


def fire(url: str, data: dict) -> threading.Thread:
    """Send `{"event": EVENT, "data": data}` to `url` from a daemon thread; return the thread."""
    return send(url, {"event": EVENT, "data": data})


def send(url: str, document: dict, headers: dict | None = None) -> threading.Thread:
    """POST `document` as JSON to `url` once, from a daemon thread; return the thread."""
    body = json.dumps(document).encode()
    thread = threading.Thread(
        target=_deliver, args=(url, body, {**HEADERS, **(headers or {})}),
        name="sandbox-webhook", daemon=True,
    )
    thread.start()
    return thread


def _deliver(url: str, body: bytes, headers: dict) -> None:
    """Make the single attempt; failures are logged, never raised."""
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    except Exception as exc:  # a background thread has no caller to raise to
        log.warning("sandbox webhook to %s failed: %s", _redact(url), exc)
        return
    if not 200 <= resp.status_code < 300:
        log.warning("sandbox webhook to %s answered %s", _redact(url), resp.status_code)


def _redact(url: str) -> str:
    """The URL without its path, which may carry a secret token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…" if rest else "<url>"
