"""Per-developer billing state and the replay guard for billing events, in Redis."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import redis

from approver.billing.events import parse_time, rfc3339

PREFIX = "approver:billing:"
SEEN_PREFIX = PREFIX + "seen:"
# Longer than any sender's retry window (Stripe retries for 3 days, Standard Webhooks
# senders for about a day), so a late redelivery is still recognised.
SEEN_TTL = 8 * 86400

# Compare-and-set in one step: two workers applying events for the same developer cannot
# interleave, and an event older than (or as old as) the held one changes nothing.
_APPLY = """
local held = tonumber(redis.call('hget', KEYS[1], 'updated_ts'))
if held and tonumber(ARGV[1]) <= held then return 0 end
redis.call('hset', KEYS[1], 'status', ARGV[2], 'plan', ARGV[3], 'updated_at', ARGV[4],
           'updated_ts', ARGV[1], 'stored_ts', ARGV[5])
return 1
"""


def _digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()


def state_key(developer_id: str) -> str:
    """The hash holding a developer's billing state (read by the `billing.*` facts)."""
    # ":" would let a developer id land on the replay guard's keys.
    if not developer_id or ":" in developer_id:
        raise ValueError("a developer id must be non-empty and contain no ':'")
    return PREFIX + developer_id


def seen_key(event_id: str) -> str:
    """The replay-guard key of one event id (hashed: ids are sender-chosen strings)."""
    return SEEN_PREFIX + _digest(event_id)


class BillingState:
    """Developers' billing status and the set of event ids already taken in."""

    def __init__(self, connection: redis.Redis):
        self.redis = connection
        self._apply = connection.register_script(_APPLY)

    def apply(self, developer_id: str, status: str, plan: str | None,
              occurred_at: str | datetime) -> bool:
        """Store the status if it is newer than the one held; whether anything changed."""
        moment = parse_time(occurred_at) if isinstance(occurred_at, str) else occurred_at
        if moment.tzinfo is None:
            raise ValueError("occurred_at needs a UTC offset")
        changed = self._apply(
            keys=[state_key(developer_id)],
            args=[f"{moment.timestamp():.6f}", status, plan or "", rfc3339(moment),
                  f"{time.time():.6f}"],
        )
        return bool(changed)

    def get(self, developer_id: str) -> dict | None:
        """The developer's billing state, or None if never heard of."""
        raw = self.redis.hgetall(state_key(developer_id))
        if not raw:
            return None
        record = {k.decode(): v.decode() for k, v in raw.items()}
        return {
            "status": record.get("status"),
            "plan": record.get("plan") or None,
            "updated_at": record.get("updated_at"),
            "updated_ts": float(record["updated_ts"]) if record.get("updated_ts") else None,
            # When this state was stored (when it began to hold here); none before 0.x kept it.
            "stored_ts": float(record["stored_ts"]) if record.get("stored_ts") else None,
        }

    def seen(self, event_id: str) -> bool:
        """Whether this event id was taken in during the last eight days."""
        return bool(self.redis.exists(seen_key(event_id)))

    def mark_seen(self, event_id: str) -> None:
        """Remember this event id for eight days."""
        self.redis.set(seen_key(event_id), "1", ex=SEEN_TTL)
