"""A validator's later answer: signed with its own secret (Standard Webhooks), checked for
shape, queued for a worker to settle; `202` at once."""

from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, current_app, jsonify, request
from rq.exceptions import DuplicateJobError

from approver.billing.signatures import SignatureError, verify_standard
from approver.pipeline import validators
from approver.web.billing import _body, _json
from approver.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("validators", __name__)


@bp.route("/validators/<name>/answers", methods=["POST"])
def answer(name: str):
    """One validator's decision on the step it was asked about (`ask_id`)."""
    rt = current_app.extensions["approver"]
    validator = next((v for v in rt.settings.validators if v.name == name), None)
    if validator is None:
        raise ApiError(404, "no_validator", "No validator of that name is configured here.")
    raw = _body(rt.settings.body_limit)
    try:
        msg_id = verify_standard([validator.secret], request.headers, raw)
    except SignatureError as exc:
        log.info("validator %s answer refused: %s", name, exc.reason)
        raise ApiError(401, "bad_signature", f"Signature check failed: {exc.reason}.") from None
    document = _json(raw)
    try:
        parsed = validators.parse_answer(document)
    except validators.Unanswered as exc:
        raise ApiError(400, "bad_shape", f"Not a validator's answer: {exc}") from None
    ask_id, ref = document.get("ask_id"), document.get("key_request_id")
    if not isinstance(ask_id, str) or not validators.ASK_ID.match(ask_id) or \
            not isinstance(ref, str) or not ref or len(ref) > 100:
        raise ApiError(400, "bad_shape", "Send the key_request_id and the ask_id you were "
                                         "sent.")
    job_id = "validator-answer-" + hashlib.sha256(f"{name}:{msg_id}".encode()).hexdigest()[:40]
    try:
        rt.queue.enqueue(validators.ANSWER_JOB, name,
                         {**parsed, "ask_id": ask_id, "key_request_id": ref},
                         job_id=job_id, unique=True, job_timeout=60, result_ttl=86400,
                         failure_ttl=30 * 86400,
                         description=f"validator {name}'s answer on key request {ref}")
    except DuplicateJobError:
        return jsonify(status="duplicate"), 202
    return jsonify(status="queued"), 202
