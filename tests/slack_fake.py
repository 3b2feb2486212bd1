"""A local stand-in for Slack's Web API, answering in the shapes Slack documents, and Slack's
side of interactivity (signing a request as Slack signs it).

Shapes, from Slack's method reference pages:
- chat.postMessage https://api.slack.com/methods/chat.postMessage: `{"ok": true, "channel":
  "C123ABC456", "ts": "1503435956.000247", "message": {...}}`; `channel_not_found`.
- chat.update https://api.slack.com/methods/chat.update: `{"ok": true, "channel", "ts",
  "text", "message": {...}}`; `message_not_found`, `cant_update_message`.
- chat.postEphemeral https://api.slack.com/methods/chat.postEphemeral: `{"ok": true,
  "message_ts": "1502210682.580145"}`; `user_not_in_channel`.
- views.open https://api.slack.com/methods/views.open: `{"ok": true, "view": {"id":
  "VMHU10V25", "type": "modal", ...}}`; `expired_trigger_id`.
- users.info https://api.slack.com/methods/users.info (form-encoded, not JSON): `{"ok":
  true, "user": {"id", "team_id", "name", "deleted", "is_bot", "is_restricted",
  "is_ultra_restricted", "profile": {"email", ...}}}` (`email` only with users:read.email);
  `user_not_found`.
- Every method: HTTP 200 with `{"ok": false, "error": "invalid_auth"}` for a wrong token
  (https://api.slack.com/web#evaluating_responses), HTTP 429 with `Retry-After` when rate
  limited (https://api.slack.com/apis/rate-limits).
- Signing: https://api.slack.com/authentication/verifying-requests-from-slack (`v0=` hex
  HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret).
- Payloads: https://api.slack.com/reference/interaction-payloads/block-actions and
  https://api.slack.com/reference/interaction-payloads/views (`view_submission`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, request

TOKEN = "xoxb-test-0123456789-abcdefABCDEF"
CHANNEL = "C0REVIEW1"
TEAM = {"id": "T0TEAM001", "domain": "example"}


class FakeSlack:
    """What the fake was asked and what it holds: messages by (channel, ts), calls in order."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.messages: dict[tuple[str, str], dict] = {}
        self.users: dict[str, dict] = {}
        self.limited = False
        self.channels = {CHANNEL}  # the channels the app was invited to
        self._ts = itertools.count(1)
        self.app = self._app()

    def add_user(self, user_id: str, email: str | None, **flags) -> None:
        profile = {"real_name": user_id.lower(), "display_name": user_id.lower()}
        if email:
            profile["email"] = email
        self.users[user_id] = {"id": user_id, "team_id": TEAM["id"], "name": user_id.lower(),
                               "deleted": False, "is_bot": False, "is_restricted": False,
                               "is_ultra_restricted": False, "profile": profile, **flags}

    def called(self, method: str) -> list[dict]:
        return [body for name, body in self.calls if name == method]

    def _app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/api/<method>")
        def method(method: str):
            body = (request.get_json(silent=True) if request.is_json
                    else request.form.to_dict()) or {}
            self.calls.append((method, body))
            if self.limited:
                return jsonify(ok=False, error="ratelimited"), 429, {"Retry-After": "30"}
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return jsonify(ok=False, error="invalid_auth")
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return jsonify(ok=False, error="unknown_method")
            return jsonify(handler(body))

        return app

    def _chat_postMessage(self, body):
        channel = body.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {"type": "message", "subtype": "bot_message", "bot_id": "B0BOT0001",
                   "text": body.get("text", ""), "blocks": body.get("blocks", []), "ts": ts}
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, body):
        key = (body.get("channel"), body.get("ts"))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key] = {**self.messages[key], "text": body.get("text", ""),
                              "blocks": body.get("blocks", []), "edited": {"user": "B0BOT0001"}}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text", ""),
                "message": self.messages[key]}

    def _chat_postEphemeral(self, body):
        if body.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}

    def _views_open(self, body):
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", "team_id": TEAM["id"],
                                     **body.get("view", {})}}

    def _users_info(self, body):
        user = self.users.get(body.get("user", ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with a request: its timestamp and `v0=` signature."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": "v0=" + mac.hexdigest(),
            "Content-Type": "application/x-www-form-urlencoded"}


def form(payload: dict) -> bytes:
    """An interactivity request's body: `payload=` and the JSON, form-encoded."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def click(action: str, request_id: str, user: str, ts: str, action_ts: str = "1.1",
          channel: str = CHANNEL) -> dict:
    """A block_actions payload: `user` pressed `action` on the message `ts` in `channel`."""
    return {"type": "block_actions", "team": TEAM, "api_app_id": "A0APP0001",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": "12345.98765.abcd2358fdea", "channel": {"id": channel,
                                                                  "name": "reviewers"},
            "message": {"type": "message", "ts": ts},
            "response_url": "https://hooks.slack.com/actions/T0TEAM001/1/xyz",
            "actions": [{"action_id": action, "block_id": "decide", "value": request_id,
                         "type": "button", "action_ts": action_ts,
                         "text": {"type": "plain_text", "text": action.title()}}]}


def submission(view: dict, user: str, reason: str | None) -> dict:
    """A view_submission payload: `user` submitted the deny modal `view` with `reason`."""
    value = {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}
    return {"type": "view_submission", "team": TEAM,
            "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
            "view": {**view, "id": "V00000042", "state": {"values": value}}}
