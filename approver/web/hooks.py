"""Tyk key-request webhooks: authenticate, check the envelope, enqueue, answer 202."""

from __future__ import annotations

import hmac
import json
import logging

from flask import Blueprint, current_app, jsonify, request

from approver.pipeline import enqueue
from approver.web.errors import ApiError
from approver.web.schemas import first_error

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__)

# Content types under which a body that is not JSON is "malformed JSON" (400) rather than
# "not JSON at all" (415).
_JSON_TYPES = ("", "application/json", "text/plain")
KEY_REQUEST_EVENT = "key_request_event"


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


def _json_body(schema: str = "tyk-webhook", what: str = "a Tyk key request event") -> dict:
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
    problem = first_error(schema, body)
    if problem:
        raise ApiError(400, "bad_shape", f"Not {what}: {problem}")
    return body


@bp.route("/hooks/tyk/<path:token>", methods=["POST", "PUT", "HEAD"])
@bp.route("/hooks/tyk", methods=["POST", "PUT", "HEAD"], defaults={"token": None})
def tyk(token: str | None):
    """Receive a Tyk classic-portal organisation event."""
    if request.method == "HEAD":
        # Tyk's "test connection": answer, do nothing.
        return "", 200
    if not _token_ok(token if token is not None else _header_token()):
        raise ApiError(401, "unauthorized", "Missing or wrong webhook token.")
    body = _json_body()
    event = body["event"]
    data = body["data"]
    request_id = data.get("id") or data["_id"]
    if not event.startswith(KEY_REQUEST_EVENT + "."):
        return jsonify(status="ignored", event=event[:200]), 200
    rt = current_app.extensions["approver"]
    queued = enqueue.decision(rt.queue, request_id, "webhook", rt.settings.retry_delays)
    return jsonify(
        status="queued" if queued else "duplicate", key_request_id=request_id
    ), 202
