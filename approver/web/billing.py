"""Billing events: check size and signature, parse, drop replays, enqueue, answer 202."""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from rq import Retry
from rq.exceptions import DuplicateJobError

from approver.billing import events
from approver.billing.signatures import SignatureError, verify_standard, verify_stripe
from approver.web import handoff
from approver.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("billing", __name__)

# The job's dotted path, kept in approver/jobs.py: queued jobs and older workers name it.
JOB = "approver.jobs.billing_event"
JOB_TIMEOUT = 90
RESULT_TTL = 7 * 86400
FAILURE_TTL = 30 * 86400
STRIPE_HEADER = "Stripe-Signature"


def job_id(event_id: str) -> str:
    """The RQ job id of one billing event (RQ allows only letters, digits, "_" and "-")."""
    return "billing-" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def _reject_constant(name: str):
    # NaN and Infinity are not JSON and would not survive the job's JSON serializer.
    raise ValueError(f"{name} is not JSON")


def _body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"The body is over the {limit}-byte limit.")
    # Chunked bodies have no length: read at most one byte past the limit to tell.
    chunks, size = [], 0
    while size <= limit:
        chunk = request.stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise ApiError(413, "too_large", f"The body is over the {limit}-byte limit.")
    return b"".join(chunks)


def _verify(settings, raw: bytes) -> str | None:
    """The webhook-id for our scheme, None for Stripe's (its id is in the body)."""
    stripe_header = request.headers.get(STRIPE_HEADER)
    try:
        if settings.stripe_secrets and (stripe_header is not None or not settings.billing_secrets):
            verify_stripe(settings.stripe_secrets, stripe_header, raw)
            return None
        return verify_standard(settings.billing_secrets, request.headers, raw)
    except SignatureError as exc:
        log.info("billing event refused: %s", exc.reason)
        raise ApiError(401, "bad_signature", f"Signature check failed: {exc.reason}.") from None


def _json(raw: bytes):
    """The signed body as JSON, sent as JSON."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None


def _parse(raw: bytes, webhook_id: str | None):
    document = _json(raw)
    try:
        if webhook_id is None:
            return events.parse_stripe(document)
        return events.parse_standard(webhook_id, document)
    except events.BadEvent as exc:
        raise ApiError(400, "bad_shape", f"Not a billing event: {exc}") from None


@bp.route("/billing/events", methods=["POST"])
def receive():
    """Receive one signed billing event (Standard Webhooks, or Stripe's scheme)."""
    rt = current_app.extensions["approver"]
    settings = rt.settings
    if not (settings.billing_secrets or settings.stripe_secrets):
        raise ApiError(404, "billing_off", "Billing events are not enabled on this service.")
    raw = _body(settings.body_limit)
    webhook_id = _verify(settings, raw)
    event = _parse(raw, webhook_id)
    if isinstance(event, events.Ignored):
        return jsonify(status="ignored", type=event.type), 200

    state = rt.billing
    if state.seen(event.id):
        return jsonify(status="duplicate", event_id=event.id), 202
    delays = settings.retry_delays
    try:
        rt.queue.enqueue(
            JOB, event.to_dict(),
            job_id=job_id(event.id), unique=True,
            retry=Retry(max=len(delays), interval=list(delays)),
            job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
            description=f"billing event {event.type} ({event.source})",
        )
    except DuplicateJobError:
        return jsonify(status="duplicate", event_id=event.id), 202
    # Only once the job is safely in Redis: a crash before this line leaves the unique
    # job id to catch the sender's retry.
    state.mark_seen(event.id)
    return jsonify(status="queued", event_id=event.id), 202


@bp.route("/billing/checkout-state", methods=["POST"])
def checkout_state():
    """The key request and developer behind a hand-off's checkout state, for the checkout.

    Signed like a billing event: the browser only ever carries the opaque state.
    """
    settings = current_app.extensions["approver"].settings
    if not (settings.billing_secrets or settings.stripe_secrets):
        raise ApiError(404, "billing_off", "Billing events are not enabled on this service.")
    raw = _body(settings.body_limit)
    _verify(settings, raw)
    document = _json(raw)
    state = document.get("state") if isinstance(document, dict) else None
    if not isinstance(state, str):
        raise ApiError(400, "bad_shape", 'Send {"state": "<the state the checkout got>"}.')
    ids = handoff.checkout_state(state)
    if ids is None:
        raise ApiError(404, "unknown_state", "No such checkout state (it lasts one hour).")
    return jsonify(ids), 200
