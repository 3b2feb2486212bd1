"""Tyk key-request webhooks: authenticate, check the envelope, enqueue, answer 202."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time

from flask import Blueprint, current_app, jsonify, request

from approver.pipeline import enqueue, metrics
from approver.web.errors import ApiError
from approver.web.schemas import first_error

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__)

# Content types under which a body that is not JSON is "malformed JSON" (400) rather than
# "not JSON at all" (415).
_JSON_TYPES = ("", "application/json", "text/plain")
KEY_REQUEST_EVENT = "key_request_event"
_OBJECT_ID = re.compile(r"[0-9a-f]{24}\Z")


def _key_request_event(body) -> bool:
    """True if `body` is a key request event that schemas/tyk-webhook.json accepts.

    Checked by hand because nearly every webhook has this shape and the schema's validator
    costs ~200 µs of a ~600 µs request; False only sends the body to the validator, which
    accepts or names the fault (tests/test_webhook.py checks that the two agree).
    """
    if type(body) is not dict:
        return False
    event, data = body.get("event"), body.get("data")
    if (type(event) is not str or not 0 < len(event) <= 200 or type(data) is not dict
            or not event.startswith(KEY_REQUEST_EVENT + ".")):
        return False
    ids = [data[k] for k in ("id", "_id") if k in data]
    return bool(ids) and all(type(i) is str and _OBJECT_ID.match(i) for i in ids)


def _token_ok(given: str | None, tokens: tuple[str, ...] | None = None) -> bool:
    """Compare against every configured token (the classic hook's by default) in constant time."""
    if not given:
        return False
    given_bytes = given.encode()
    ok = False
    if tokens is None:
        tokens = current_app.extensions["approver"].settings.webhook_tokens
    for token in tokens:
        ok |= hmac.compare_digest(given_bytes, token.encode())
    return ok


def _header_token() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("X-Approver-Token")


def _json_body(schema: str = "tyk-webhook", what: str = "a Tyk key request event",
               accepts=None) -> dict:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"The body is over the {limit}-byte limit.")
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # Tyk's Content-Type is undocumented (Tyk CONTRACT §1.4): a JSON body counts
        # whatever its type says; only a body that is not JSON is judged by its type.
        mimetype = request.mimetype
        if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type",
                           "Send the event as application/json.") from None
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    problem = None if accepts and accepts(body) else first_error(schema, body)
    if problem:
        raise ApiError(400, "bad_shape", f"Not {what}: {problem}")
    return body


# The organisation the Dashboard credential serves (what the workers' health checks read
# from Tyk) is kept by each app this long before it is read from Redis again.
ORG_TTL = 30.0


def _served_org(rt) -> str | None:
    """The organisation this service serves, or None until a worker has seen it."""
    served = current_app.extensions.setdefault("approver_served_org", {})
    now = time.monotonic()
    if "at" not in served or now - served["at"] >= ORG_TTL:
        served.update(org=rt.store.served_org(), at=now)
    return served["org"]


def _not_served(rt, event: str, org: str, request_id: str):
    """An event of another organisation: counted, logged once a day, not queued (200)."""
    metrics.FOREIGN_ORG_EVENTS.labels("classic").inc()
    if rt.store.first_sight_of_org(org):
        log.warning("key request %s is of organisation %s, which this service does not "
                    "serve (it serves %s): ignored; run one service per organisation "
                    "(docs/operations.md)", str(request_id)[:40], org[:64], _served_org(rt))
    return jsonify(status="ignored", event=event[:200], reason="organisation not served",
                   org_id=org[:64], key_request_id=request_id), 200


@bp.route("/hooks/tyk/<path:token>", methods=["POST", "PUT", "HEAD"])
@bp.route("/hooks/tyk", methods=["POST", "PUT", "HEAD"], defaults={"token": None})
def tyk(token: str | None):
    """Receive a Tyk classic-portal organisation event."""
    if request.method == "HEAD":
        # Tyk's "test connection": answer, do nothing.
        return "", 200
    if not _token_ok(token if token is not None else _header_token()):
        raise ApiError(401, "unauthorized", "Missing or wrong webhook token.")
    body = _json_body(accepts=_key_request_event)
    event = body["event"]
    data = body["data"]
    request_id = data.get("id") or data["_id"]
    if not event.startswith(KEY_REQUEST_EVENT + "."):
        return jsonify(status="ignored", event=event[:200]), 200
    rt = current_app.extensions["approver"]
    org = data.get("org_id")
    if isinstance(org, str) and org and _served_org(rt) not in (None, org):
        return _not_served(rt, event, org, request_id)
    queued = enqueue.decision(rt.queue, request_id, "webhook", rt.settings.retry_delays)
    return jsonify(
        status="queued" if queued else "duplicate", key_request_id=request_id
    ), 202
