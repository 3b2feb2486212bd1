"""Webhook signature checks: the Standard Webhooks spec and Stripe's scheme."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterable, Mapping

from approver.errors import ApproverError
from approver.signing import whsec_key

log = logging.getLogger(__name__)

TOLERANCE = 300
# Timestamps are whole seconds since the epoch in both schemes; a bound on the length keeps
# int() cheap on hostile input. Each pattern ends in \Z: `$` also matches before a "\n".
_TIMESTAMP = re.compile(r"^[0-9]{1,12}\Z")
# The spec sets no format for webhook-id; it becomes our event id, so refuse oddities.
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]{1,256}\Z")
_HEX = re.compile(r"^[0-9a-fA-F]+\Z")


class SignatureError(ApproverError):
    """A webhook's signature is missing, malformed, stale or wrong.

    The reason never holds a secret or a signature value: it is safe to log and to answer.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _check_time(timestamp: str, now: float | None, tolerance: int) -> int:
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError("malformed timestamp")
    value = int(timestamp)
    current = time.time() if now is None else now
    if value < current - tolerance:
        raise SignatureError("timestamp too old")
    if value > current + tolerance:
        raise SignatureError("timestamp too new")
    return value


def verify_standard(
    secrets: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: int = TOLERANCE,
) -> str:
    """Check a Standard Webhooks signature; return the webhook-id, or raise SignatureError."""
    lowered = {k.lower(): v for k, v in headers.items()}
    values = {}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        value = (lowered.get(name) or "").strip()
        if not value:
            raise SignatureError(f"missing {name} header")
        values[name] = value
    msg_id, timestamp, header = values.values()
    if not _WEBHOOK_ID.match(msg_id):
        raise SignatureError("malformed webhook-id header")
    _check_time(timestamp, now, tolerance)

    given = []
    for entry in header.split():
        version, comma, value = entry.partition(",")
        if not comma or not version or not value:
            raise SignatureError("malformed webhook-signature header")
        if version != "v1":
            continue  # v1a (asymmetric) and future versions: not ours to check
        try:
            given.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise SignatureError("malformed webhook-signature header") from None
    if not given:
        raise SignatureError("no v1 signature in webhook-signature header")

    signed = f"{msg_id}.{timestamp}.".encode() + body
    matched = False
    for i, secret in enumerate(secrets, 1):
        key = whsec_key(secret)
        if key is None:
            log.warning("billing secret %d is not valid base64 after whsec_; skipped", i)
            continue
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for signature in given:
            # No early exit: every comparison runs, so timing says nothing about which.
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("no signature matches")
    return msg_id


def verify_stripe(
    secrets: Iterable[str],
    header: str | None,
    body: bytes,
    now: float | None = None,
    tolerance: int = TOLERANCE,
) -> None:
    """Check a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`); raise SignatureError if bad."""
    if not header or not header.strip():
        raise SignatureError("missing Stripe-Signature header")
    timestamp = None
    given = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            raise SignatureError("malformed Stripe-Signature header")
        if name == "t":
            if timestamp is not None:
                raise SignatureError("malformed Stripe-Signature header")
            timestamp = value
        elif name == "v1":
            if not _HEX.match(value):
                raise SignatureError("malformed Stripe-Signature header")
            given.append(value.lower().encode())
        # v0 (test-mode legacy) and unknown schemes are ignored, as Stripe's libraries do.
    if timestamp is None:
        raise SignatureError("malformed Stripe-Signature header: no timestamp")
    if not given:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    _check_time(timestamp, now, tolerance)

    signed = f"{timestamp}.".encode() + body
    matched = False
    for secret in secrets:
        # Stripe keys the HMAC with the endpoint secret string as-is, prefix included.
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("no signature matches")
