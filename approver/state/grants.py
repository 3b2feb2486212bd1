"""Approvals for a period (a rule's `grant:`): when each one's reminder is due and when it
ends, kept in Redis so that the workers' passes move them, across restarts and failover.

Two sorted sets of request references, scored by the time each is due: the reminder and
the end. Whoever removes a reference from a set (ZREM answers 1 to one caller only) acts
on it, so a reminder is sent once and an end is acted on once, whatever the number of
workers; an end whose revocation failed is put back, to be tried by a later pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from approver.rules.explain import seconds_text
from approver.state.common import PREFIX

REMIND_KEY = PREFIX + "grants:remind"
END_KEY = PREFIX + "grants:end"


def iso(ts: float) -> str:
    """A time as recorded: RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def starts(grant: dict, now: float) -> dict:
    """The record's fields for a grant that starts now: when it ends and when the developer
    is reminded ("" when not), with the grant itself."""
    expires = now + int(grant["expires_after"])
    remind = int(grant.get("remind_before") or 0)
    return {"grant": grant, "expires_at": iso(expires), "expires_ts": expires,
            "remind_at": iso(expires - remind) if remind else "",
            "remind_ts": expires - remind if remind else ""}


def schedule(pipe, ref: str, fields: dict) -> None:
    """Queue on `pipe` the grant's reminder and end, as `starts` gave them."""
    pipe.zadd(END_KEY, {ref: float(fields["expires_ts"])})
    if fields.get("remind_ts"):
        pipe.zadd(REMIND_KEY, {ref: float(fields["remind_ts"])})
    else:
        pipe.zrem(REMIND_KEY, ref)


def due(redis, key: str, now: float) -> list[tuple[str, float]]:
    """References due by `now` in one of the sets, oldest first, with when they were due."""
    return [(r.decode(), score) for r, score in
            redis.zrangebyscore(key, "-inf", now, withscores=True)]


def take(redis, key: str, ref: str) -> bool:
    """True for the one caller that takes a due reference off its set."""
    return bool(redis.zrem(key, ref))


def put_back(redis, key: str, ref: str, when: float) -> None:
    """An end not carried out (Tyk failed): due again for the next pass."""
    redis.zadd(key, {ref: when})


def of(record: dict) -> dict | None:
    """The grant a record carries (None if none), decoded."""
    grant = record.get("grant")
    if isinstance(grant, str):
        try:
            grant = json.loads(grant) if grant else None
        except ValueError:
            return None
    return grant if isinstance(grant, dict) else None


RENEWAL = {"rules": "the rules decide again before it ends",
           "review": "a person decides in the review inbox before it ends",
           "none": "none: without a reminder nobody is asked before the end"}


def ends_text(record: dict, now: float) -> str:
    """When the access an approval gave ends, in words ("" when it does not end)."""
    if not record.get("expires_at") or not record.get("expires_ts"):
        return ""
    if record.get("grant_ended_at"):
        return f"{record['expires_at']} (ended: keys revoked at {record['grant_ended_at']})"
    left = float(record["expires_ts"]) - now
    if left <= 0:
        return f"{record['expires_at']} (due to end: the next pass revokes the keys)"
    grant = of(record) or {}
    renew = grant.get("renew") if grant.get("renew") in ("rules", "review") else "review"
    if renew == "review" and not grant.get("remind_before"):
        renew = "none"
    renew = RENEWAL[renew]
    return f"{record['expires_at']} (in {seconds_text(int(-(-left // 60)) * 60)}; " \
        f"renewal: {renew})"
