"""Signed, expiring tokens (the hand-off's status links): HMAC-SHA256 over a JSON payload;
and the key of a Standard Webhooks secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time

from approver.errors import ApproverError


class BadToken(ApproverError):
    """A token that is malformed, forged or expired."""


WHSEC_PREFIX = "whsec_"


def whsec_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks `whsec_` secret: the base64 part, decoded (None if
    it is empty or not base64)."""
    try:
        # Padding is added because some senders hand out unpadded base64 secrets (the
        # reference library does the same; extra padding is ignored).
        return base64.b64decode(secret.removeprefix(WHSEC_PREFIX) + "==") or None
    except (binascii.Error, ValueError):
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: dict, ttl: int, purpose: str) -> str:
    """A token carrying `payload`, valid for `ttl` seconds and only for `purpose`."""
    body = _b64(json.dumps({**payload, "exp": int(time.time()) + ttl}, separators=(",", ":"),
                           sort_keys=True).encode())
    mac = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(key: bytes, token: str, purpose: str) -> dict:
    """The payload of a valid token; BadToken otherwise."""
    if not key:
        raise BadToken("no signing key is configured")
    body, _, mac = token.partition(".")
    try:
        expected = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(mac), expected):
            raise BadToken("bad signature")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        raise BadToken("malformed token") from None
    if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
        raise BadToken("expired token")
    return payload
