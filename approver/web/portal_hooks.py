"""New Tyk Developer Portal webhooks: authenticate, check the envelope, enqueue, answer 202."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request
from rq.exceptions import DuplicateJobError

from approver.pipeline import enqueue, sources
from approver.pipeline.sources.portal import hint
from approver.web.errors import ApiError
from approver.web.hooks import _header_token, _json_body, _token_ok

bp = Blueprint("portal_hooks", __name__)

ACCESS_REQUEST_CREATED = "AccessRequestCreated"
# An immediate reconciler pass is queued at most once per this many seconds.
RECONCILE_WINDOW = 5


def reconcile_now(queue) -> bool:
    """Queue a reconciler pass now: one per few seconds, however many events ask."""
    slot = int(time.time() // RECONCILE_WINDOW)
    try:
        queue.enqueue(enqueue.RECONCILE, job_id=f"reconcile-now-{slot}", unique=True,
                      job_timeout=enqueue.JOB_TIMEOUT, result_ttl=RECONCILE_WINDOW * 2,
                      description="reconciler pass asked for by a portal webhook")
    except DuplicateJobError:
        return False
    return True


# The portal lets an admin choose the webhook's method (Tyk CONTRACT §4): each that
# carries a body is accepted, and HEAD for "Test Connection".
METHODS = ["POST", "PUT", "PATCH", "DELETE", "HEAD"]


@bp.route("/hooks/portal/<path:token>", methods=METHODS)
@bp.route("/hooks/portal", methods=METHODS, defaults={"token": None})
def portal(token: str | None):
    """Receive a new Developer Portal webhook event."""
    if request.method == "HEAD":
        # The portal's "Test Connection" is a HEAD sent without the custom headers
        # (Tyk CONTRACT §4): answer, check nothing, do nothing.
        return "", 200
    rt = current_app.extensions["approver"]
    given = token if token is not None else _header_token()
    if not _token_ok(given, rt.settings.portal_webhook_tokens):
        raise ApiError(401, "unauthorized", "Missing or wrong webhook token.")
    body = _json_body("portal-webhook", "a Tyk Developer Portal event")
    event = body["Event"]
    if event != ACCESS_REQUEST_CREATED:
        return jsonify(status="ignored", event=event[:200]), 200
    native_id = int(body["Message"]["ID"])
    if native_id == 0:
        # Tyk CONTRACT §4: the event may fire before the record is saved (the documented
        # sample has ID 0); a reconciler pass finds the request by listing instead.
        queued = reconcile_now(rt.queue)
        return jsonify(status="queued" if queued else "duplicate", reconcile=True), 202
    ref = sources.ref("portal", str(native_id))
    # The ids the event names, kept only to break ties between records of one name, and
    # only once the records agree with them (approver.pipeline.sources.portal).
    rt.store.save_hint(ref, hint(body["Message"]))
    queued = enqueue.decision(rt.queue, ref, "webhook", rt.settings.retry_delays)
    return jsonify(status="queued" if queued else "duplicate", key_request_id=ref), 202
