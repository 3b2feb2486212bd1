"""Billing events, ours and Stripe's, parsed to one normalized, JSON-able form."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files

from jsonschema import Draft202012Validator

from approver import validation
from approver.errors import ApproverError

BILLING_STATUS = "billing.status"
KEY_REQUEST_DECISION = "key_request.decision"
KINDS = (BILLING_STATUS, KEY_REQUEST_DECISION)
STATUSES = ("trialing", "active", "past_due", "canceled")
STANDARD, STRIPE = "standard", "stripe"

STRIPE_EVENTS = frozenset({
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
})
# Stripe's subscription statuses folded into ours: anything that is not paying and not
# over yet is past_due, so rules treat it like a failed payment rather than a cancellation.
STRIPE_STATUSES = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "incomplete": "past_due",
    "paused": "past_due",
    "canceled": "canceled",
    "incomplete_expired": "canceled",
}
# Checked with fullmatch: a `$` also matches before a trailing newline.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_STRIPE_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+")
_TEXT = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")
PLAN_MAX = 200
# When a change may have happened: from 2000 until a little after now (the senders' clocks
# are within the signature's 5-minute tolerance of ours). One dated 9999 would otherwise
# make every later event for the developer look stale.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
CLOCK_SKEW = 300


class BadEvent(ApproverError):
    """A billing event body is not of a shape we accept; the message names the field."""


@dataclass(frozen=True)
class Event:
    """A billing event to act on, in normalized form (no secrets, JSON-able data)."""

    id: str
    type: str
    data: dict = field(default_factory=dict)
    source: str = STANDARD

    def to_dict(self) -> dict:
        """The event as plain data (what the RQ job receives)."""
        return {"id": self.id, "type": self.type, "source": self.source, "data": dict(self.data)}

    @classmethod
    def from_dict(cls, doc: dict) -> Event:
        """The event back from `to_dict()`'s form."""
        return cls(id=doc["id"], type=doc["type"], data=dict(doc["data"]),
                   source=doc.get("source", STANDARD))


@dataclass(frozen=True)
class Ignored:
    """A well-formed event of a kind we do not act on."""

    type: str
    source: str = STANDARD


@cache
def schema() -> dict:
    """Our billing event JSON Schema (the document served to integrators)."""
    # Read by path from the approver package so that parsing needs no Flask import.
    text = files("approver").joinpath("web", "schemas", "billing-event.json").read_text()
    return json.loads(text)


@cache
def _validator() -> Draft202012Validator:
    return validation.validator(schema())


def rfc3339(moment: datetime) -> str:
    """A timezone-aware time as RFC 3339 in UTC, `Z`-suffixed."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime; ValueError if it is not one."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no UTC offset")
    return moment


def occurred(epoch: float) -> datetime:
    """The UTC time of a change at `epoch`; BadEvent outside 2000 .. a few minutes from now."""
    if not EARLIEST <= epoch <= time.time() + CLOCK_SKEW:
        raise BadEvent("not between 2000 and now")
    return datetime.fromtimestamp(epoch, UTC)


def parse_standard(event_id: str, document) -> Event | Ignored:
    """Our own event body (see the billing-event JSON Schema), identified by its webhook-id."""
    error = next(iter(_validator().iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BadEvent(f"{where}: {error.message[:200]}")
    kind = document["type"]
    if kind not in KINDS:
        return Ignored(kind)
    data = document["data"]
    if kind == BILLING_STATUS:
        try:
            moment = occurred(parse_time(data["occurred_at"]).timestamp())
        except ValueError:
            raise BadEvent("data/occurred_at: not a valid RFC 3339 date-time") from None
        except BadEvent as exc:
            raise BadEvent(f"data/occurred_at: {exc}") from None
        normalized = {
            k: data[k] for k in ("developer_id", "developer_email") if data.get(k) is not None
        }
        normalized.update(
            status=data["status"], plan=data.get("plan") or None, occurred_at=rfc3339(moment)
        )
    else:
        normalized = {
            "key_request_id": data["key_request_id"],
            "decision": data["decision"],
            "reason": data.get("reason") or None,
        }
    return Event(id=event_id, type=kind, data=normalized, source=STANDARD)


def _string(value) -> str | None:
    # Stripe removes a metadata key by setting it to "": treat empty as absent.
    return value if isinstance(value, str) and value.strip() else None


def _text(value) -> str | None:
    # Shown to people (reasons, pages, the terminal): no control characters or line breaks.
    value = _string(value)
    return value if value is not None and _TEXT.fullmatch(value) else None


def _stripe_plan(subscription: dict) -> str | None:
    items = subscription.get("items")
    rows = items.get("data") if isinstance(items, dict) else None
    first = rows[0] if isinstance(rows, list) and rows else None
    price = first.get("price") if isinstance(first, dict) else None
    if not isinstance(price, dict):
        return None
    for name in ("lookup_key", "nickname", "id"):
        value = _text(price.get(name))
        if value:
            return value[:PLAN_MAX]
    return None


def parse_stripe(document) -> Event | Ignored:
    """A Stripe event: subscription changes become billing.status events, the rest Ignored."""
    if not isinstance(document, dict):
        raise BadEvent("(top level): a Stripe event must be a JSON object")
    kind = document.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadEvent("type: missing or not a string")
    if kind not in STRIPE_EVENTS:
        return Ignored(kind[:200], STRIPE)
    event_id = document.get("id")
    if not isinstance(event_id, str) or not _STRIPE_ID.fullmatch(event_id):
        raise BadEvent("id: missing or not a Stripe event id")
    created = document.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise BadEvent("created: missing or not epoch seconds")
    try:
        moment = occurred(created)
    except BadEvent as exc:
        raise BadEvent(f"created: {exc}") from None
    data = document.get("data")
    subscription = data.get("object") if isinstance(data, dict) else None
    if not isinstance(subscription, dict):
        raise BadEvent("data.object: missing or not an object")
    metadata = subscription.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadEvent("data.object.metadata: not an object")

    developer = {}
    developer_id = _string(metadata.get("tyk_developer_id"))
    if developer_id is not None:
        if not _ID.fullmatch(developer_id):
            raise BadEvent("data.object.metadata.tyk_developer_id: not a developer id")
        developer["developer_id"] = developer_id
    email = _string(metadata.get("tyk_developer_email"))
    if email is not None:
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            raise BadEvent("data.object.metadata.tyk_developer_email: not an email address")
        developer["developer_email"] = email
    if not developer:
        raise BadEvent(
            "data.object.metadata: set tyk_developer_id or tyk_developer_email on the "
            "Stripe subscription so the developer can be identified"
        )

    if kind == "customer.subscription.deleted":
        status = "canceled"
    else:
        raw = subscription.get("status")
        status = STRIPE_STATUSES.get(raw) if isinstance(raw, str) else None
        if status is None:
            shown = repr(raw[:50]) if isinstance(raw, str) else "missing"
            raise BadEvent(f"data.object.status: unknown subscription status ({shown})")
    return Event(
        id=event_id,
        type=BILLING_STATUS,
        data={**developer, "status": status, "plan": _stripe_plan(subscription),
              "occurred_at": rfc3339(moment)},
        source=STRIPE,
    )
