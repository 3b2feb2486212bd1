"""People's claims to decide a request in the review inbox, taken atomically in Redis: of
two admins deciding the same request, one wins and the other is told at once."""

from __future__ import annotations

import json

from approver.state.common import PREFIX
from approver.state.records import IN_REVIEW, WAITING, state_key

# A claim outlives the retries of the job carrying it out; one whose job failed for good
# lapses, and the request can be claimed again.
CLAIM_TTL = 900
SETTLED_TTL = 600
# Claim a request if it is in the inbox and nobody claimed it: {1}, {0, state}, {2, claim}.
# KEYS: the request's state, its claim; ARGV: the claim (JSON), its TTL in seconds.
_CLAIM = f"""
local state = redis.call('hget', KEYS[1], 'state')
if state ~= '{IN_REVIEW}' and state ~= '{WAITING}' then return {{0, state or ''}} end
if redis.call('set', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return {{1, ''}} end
return {{2, redis.call('get', KEYS[2]) or ''}}
"""


def claim_key(request_id: str) -> str:
    """The key holding the claim on one request."""
    return f"{PREFIX}claim:{request_id}"


class Claims:
    """Claims on requests in the inbox (mixed into `Store`: `self.redis`)."""

    def take_claim(self, request_id: str, taken: dict) -> tuple[int, str]:
        """Claim a request in the inbox that nobody claimed: (1, ""); else (2, the claim
        held, as JSON), or (0, the request's state; "" if it has none)."""
        done, detail = self.redis.eval(_CLAIM, 2, state_key(request_id), claim_key(request_id),
                                       json.dumps(taken), CLAIM_TTL)
        return done, detail.decode() if isinstance(detail, bytes) else detail

    def claim_of(self, request_id: str) -> dict | None:
        """The claim on a request (with its result once settled), or None."""
        raw = self.redis.get(claim_key(request_id))
        return json.loads(raw) if raw else None

    def claims_of(self, request_ids: list[str]) -> list[dict | None]:
        """The claim on each request (None where there is none), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.get(claim_key(request_id))
        return [json.loads(raw) if raw else None for raw in pipe.execute()]

    def settle_claim(self, request_id: str, claim_id: str, result: dict) -> None:
        """Note what became of a claim (shown to its author for a while), if it is still it."""
        current = self.claim_of(request_id)
        if current and current["claim_id"] == claim_id:
            current["result"] = {k: result.get(k) for k in ("state", "outcome", "reason")}
            self.redis.set(claim_key(request_id), json.dumps(current), ex=SETTLED_TTL)

    def release_claim(self, request_id: str, claim_id: str) -> None:
        """Drop a claim nobody will carry out (its job could not be queued)."""
        current = self.claim_of(request_id)
        if current and current["claim_id"] == claim_id:
            self.redis.delete(claim_key(request_id))
