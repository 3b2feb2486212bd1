"""Renewals a person decides (a grant's `renew: review`): one open item per grant, in the
review inbox beside the requests, decided once.

A renewal is not a key request: Tyk has nothing pending for it, so it is kept apart from
the request's record (which stays `applied`) and from the requests' inbox index, where the
reconciler, the deadlines and the claims never see it. One hash per request holds its
latest renewal (`renewal_id`, the end it is about, its state); a sorted set lists the open
ones by when they opened. Deciding is one Lua script: the renewal must still be open and
be the one the person saw (its id), so of two decisions, or a replayed one, one wins.
"""

from __future__ import annotations

import uuid

from approver.state.common import PREFIX, now_iso

OPEN_KEY = PREFIX + "renewals"
# ENDED: closed undecided because the access ended another way (its keys were revoked).
OPEN, APPROVED, DENIED, LAPSED, ENDED = "open", "approved", "denied", "lapsed", "ended"

# KEYS: the renewal, the open index. ARGV: the renewal id, the new state, then field/value
# pairs. {1, ""} if decided now; else {0, state, renewal id} as they are.
_DECIDE = f"""
local state = redis.call('hget', KEYS[1], 'state')
local id = redis.call('hget', KEYS[1], 'renewal_id')
if state ~= '{OPEN}' or id ~= ARGV[1] then return {{0, state or '', id or ''}} end
redis.call('hset', KEYS[1], 'state', ARGV[2], unpack(ARGV, 3))
redis.call('zrem', KEYS[2], redis.call('hget', KEYS[1], 'ref'))
return {{1, '', id}}
"""


def renewal_key(ref: str) -> str:
    """The hash holding a request's latest renewal."""
    return f"{PREFIX}renewal:{ref}"


def open_renewal(redis, ref: str, ends: str, ends_ts: float, now: float) -> dict:
    """Open the renewal of a grant ending at `ends` (replacing an earlier one); what is kept."""
    renewal = {"ref": ref, "renewal_id": uuid.uuid4().hex, "state": OPEN, "ends": ends,
               "ends_ts": repr(float(ends_ts)), "opened_at": now_iso()}
    pipe = redis.pipeline(transaction=True)
    pipe.delete(renewal_key(ref))
    pipe.hset(renewal_key(ref), mapping=renewal)
    pipe.zadd(OPEN_KEY, {ref: now})
    pipe.execute()
    return renewal


def get(redis, ref: str) -> dict | None:
    """A request's latest renewal, or None."""
    return get_many(redis, [ref])[0]


def get_many(redis, refs: list[str]) -> list[dict | None]:
    """The latest renewal of each request (None where it has none), in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for ref in refs:
        pipe.hgetall(renewal_key(ref))
    return [{k.decode(): v.decode() for k, v in raw.items()} if raw else None
            for raw in pipe.execute()]


def opened(redis) -> list[tuple[str, float]]:
    """(request reference, when its renewal opened) of every open renewal, oldest first."""
    return [(m.decode(), score) for m, score in redis.zrange(OPEN_KEY, 0, -1, withscores=True)]


def decide(redis, ref: str, renewal_id: str, state: str, **fields) -> tuple[bool, dict]:
    """Close the open renewal `renewal_id` as `state` (approved, denied, lapsed, ended) with
    `fields`: (True, the renewal now) for the one caller that does; else (False, the
    renewal as it is)."""
    args = [renewal_id, state]
    for name, value in {**fields, "decided_at": now_iso()}.items():
        args += [name, "" if value is None else str(value)]
    done, *_ = redis.eval(_DECIDE, 2, renewal_key(ref), OPEN_KEY, *args)
    return bool(done), get(redis, ref) or {}


def mark_applied(pipe, ref: str, renewal_id: str) -> None:
    """Note, in the transaction that extends the grant, that this approval is carried out."""
    pipe.hset(renewal_key(ref), "applied", renewal_id)


def label(renewal: dict) -> str:
    """What a renewal item is, as the inbox, the request page and `decisions show` say it."""
    return f"renewal of access ending {renewal.get('ends') or '?'}"


def shown(renewal: dict | None) -> dict | None:
    """A renewal for people to read: with its label and where it stands in words."""
    if renewal is None:
        return None
    state = renewal.get("state")
    said = {OPEN: "awaiting a person",
            APPROVED: f"approved by {renewal.get('by')}",
            DENIED: f"denied by {renewal.get('by')}",
            LAPSED: "not decided before the end",
            ENDED: f"closed, {renewal.get('reason') or 'the access ended'}"}.get(state, state)
    return {**renewal, "label": label(renewal), "open": state == OPEN,
            "said": f"{label(renewal)}: {said}"}
