"""Slack's interactivity requests (button clicks, the deny modal's submission): the signature
checked with slack_sdk's verifier (`v0`, HMAC-SHA256 over `v0:{timestamp}:{body}`, at most
5 minutes old, compared in constant time), then queued for a worker, answered at once.

Only the deny button calls Slack from here (views.open must follow the click within 3
seconds); who clicked, whether they may decide, and every message are a worker's.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import parse_qs

from flask import Blueprint, current_app, jsonify, request
from slack_sdk.signature import SignatureVerifier

from approver.pipeline import enqueue, slackapp
from approver.slack import SlackError
from approver.slack.blocks import APPROVE, DENY, DENY_CALLBACK, REASON_BLOCK, REASON_INPUT
from approver.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("slack_hooks", __name__)
_SLACK_ID = 40
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def _rt():
    return current_app.extensions["approver"]


@bp.post("/hooks/slack/interactive")
def interactive():
    """A click or a modal's submission, signed by Slack."""
    settings = _rt().settings
    if not (slackapp.configured(settings) and settings.slack_signing_secret):
        raise ApiError(404, "not_found", "Slack is not configured here.")
    body = request.get_data(cache=False)
    if not _signed(settings.slack_signing_secret, body):
        log.warning("Slack request refused: signature missing, wrong or stale")
        raise ApiError(401, "bad_signature", "The Slack signature is missing, wrong, or more "
                       "than 5 minutes old.")
    payload = _payload(body)
    kind = payload.get("type")
    if kind == "block_actions":
        return _clicked(payload)
    if kind == "view_submission" and _text(payload.get("view"), "callback_id") == DENY_CALLBACK:
        return _denied(payload)
    return "", 200  # other interactions (a modal closed, the console link): nothing to do


def _signed(secret: str, body: bytes) -> bool:
    """Whether Slack signed this body, in the last 5 minutes (slack_sdk's check, given only
    what it can take: digits for a time, a hex signature, a UTF-8 body)."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return SignatureVerifier(secret).is_valid(body, timestamp, signature)


def _payload(body: bytes) -> dict:
    try:
        values = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(values["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError):
        raise ApiError(400, "bad_payload", "Expected a form with a JSON `payload`.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_payload", "The payload is not a JSON object.")
    return payload


def _text(value, key: str, limit: int = _SLACK_ID) -> str:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= limit else ""


def _request_id(value: str) -> str:
    if not enqueue.ID_PATTERN.match(value or ""):
        raise ApiError(400, "bad_payload", "The action names no key request.")
    return value


def _clicked(payload: dict):
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else {}
    name = _text(action, "action_id")
    if name not in (APPROVE, DENY):
        return "", 200
    request_id = _request_id(_text(action, "value", 64))
    user = _text(payload.get("user"), "id")
    channel = _text(payload.get("channel"), "id") or _text(payload.get("container"),
                                                            "channel_id")
    ts = _text(payload.get("message"), "ts") or _text(payload.get("container"), "message_ts")
    if not user:
        raise ApiError(400, "bad_payload", "The click names no user.")
    settings = _rt().settings
    if name == DENY:
        trigger = _text(payload, "trigger_id", 200)
        try:
            slackapp.open_deny(settings, trigger, request_id, channel, ts)
        except SlackError as exc:
            log.warning("Slack deny modal not opened: %s", exc)
        return "", 200
    click = {"outcome": "approve", "request_id": request_id, "user": user,
             "channel": channel, "ts": ts, **_teams(payload)}
    slackapp.queue_click(_rt().queue, settings, click,
                         _key(_text(action, "action_ts", 64) or ts, user))
    return "", 200


def _denied(payload: dict):
    view = payload["view"]
    try:
        private = json.loads(_text(view, "private_metadata", 500))
    except ValueError:
        raise ApiError(400, "bad_payload", "The modal carries no key request.") from None
    request_id = _request_id(private.get("request_id") if isinstance(private, dict) else "")
    values = ((view.get("state") or {}).get("values") or {}) if isinstance(
        view.get("state"), dict) else {}
    reason = ((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value") or ""
    if not isinstance(reason, str) or not reason.strip():
        return jsonify(response_action="errors",
                       errors={REASON_BLOCK: "A reason is required to deny a request."})
    user = _text(payload.get("user"), "id")
    if not user:
        raise ApiError(400, "bad_payload", "The submission names no user.")
    click = {"outcome": "deny", "reason": reason[:500], "request_id": request_id,
             "user": user, "channel": _text(private, "channel"), "ts": _text(private, "ts"),
             **_teams(payload)}
    slackapp.queue_click(_rt().queue, _rt().settings, click, _key(_text(view, "id"), user))
    return "", 200


def _teams(payload: dict) -> dict:
    """The workspace the app is in, and the one of who clicked (another organisation's,
    in a channel shared with it through Slack Connect)."""
    return {"team": _text(payload.get("team"), "id"),
            "user_team": _text(payload.get("user"), "team_id")}


def _key(event: str, user: str) -> str:
    """A job key per click: a redelivered request (Slack retries) is queued once."""
    return "".join(c for c in f"{user}-{event}" if c.isalnum() or c in "-_")[:120]
