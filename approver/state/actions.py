"""Action links' tokens in Redis: random, kept only as their SHA-256, bound to one person (an
account or an address), one request (and step), single use and expiring. A token also
records when its request entered the inbox: once the request is decided by anyone it is no
longer there (or entered again later), and `pipeline.actions` refuses the token.

A token's record outlives its expiry by `KEEP_AFTER`, so an expired or used link is refused
saying so, not as unknown. The page a link opens hands out a nonce per view; its form must
send it back with the token (`take_nonce`), once.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from approver.state.common import PREFIX, now_iso
from approver.state.store import Store

TOKEN_KEY = PREFIX + "action:"  # + the token's SHA-256: subject, request, step, expiry, use
NONCE_KEY = PREFIX + "action-nonce:"  # + the token's hash + ":" + the nonce's hash
KEEP_AFTER = 7 * 86400
NONCE_TTL = 3600
TOKEN_BYTES = 32  # 256 bits: guessing one is out of reach, whatever the rate

# Use a token: {1} done; {0} unknown; {2, used_at, used_by} used; {4} expired.
# KEYS: the token's record; ARGV: now (epoch seconds), who uses it, when (ISO).
_USE = """
local found = redis.call('hmget', KEYS[1], 'expires', 'used_at', 'used_by')
if not found[1] then return {0} end
if found[2] then return {2, found[2], found[3] or ''} end
if tonumber(found[1]) < tonumber(ARGV[1]) then return {4} end
redis.call('hset', KEYS[1], 'used_at', ARGV[3], 'used_by', ARGV[2])
return {1}
"""
USED, UNKNOWN, SPENT, EXPIRED = 1, 0, 2, 4


def digest(token: str) -> str:
    """What Redis keeps of a token: its SHA-256 (a random 256-bit token needs no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def mint(store: Store, subject: str, request_id: str, step: str, since: float,
         ttl: int) -> str:
    """A new token for `subject` to decide `request_id` (at `step`; "" until steps exist)
    while it stays in the inbox it entered at `since`; the token itself is returned and
    kept nowhere."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    hashed = digest(token)
    pipe = store.redis.pipeline(transaction=True)
    pipe.hset(TOKEN_KEY + hashed, mapping={
        "subject": subject, "request_id": request_id, "step": step, "since": repr(since),
        "created_at": now_iso(), "expires": int(time.time()) + ttl})
    pipe.expire(TOKEN_KEY + hashed, ttl + KEEP_AFTER)
    pipe.execute()
    return token


def look(store: Store, token: str) -> dict | None:
    """The token's record (without using it), or None if it is unknown."""
    raw = store.redis.hgetall(TOKEN_KEY + digest(token))
    return {k.decode(): v.decode() for k, v in raw.items()} if raw else None


def use(store: Store, token: str, by: str) -> tuple[int, str, str]:
    """Use a token, atomically: (USED, "", "") once; else why not (UNKNOWN, SPENT with when
    and by whom, EXPIRED)."""
    answer = store.redis.eval(_USE, 1, TOKEN_KEY + digest(token), int(time.time()), by,
                              now_iso())
    texts = [a.decode() if isinstance(a, bytes) else str(a) for a in answer[1:]]
    return int(answer[0]), *[*texts, "", ""][:2]


def give_nonce(store: Store, token: str) -> str:
    """A nonce for one view of a link's page; its form sends it back."""
    nonce = secrets.token_urlsafe(24)
    store.redis.set(_nonce_key(token, nonce), "1", ex=NONCE_TTL)
    return nonce


def take_nonce(store: Store, token: str, nonce: str) -> bool:
    """Whether `nonce` was given for a view of this token's page, and not taken before."""
    return bool(nonce) and bool(store.redis.delete(_nonce_key(token, nonce)))


def _nonce_key(token: str, nonce: str) -> str:
    return f"{NONCE_KEY}{digest(token)}:{hashlib.sha256(nonce.encode()).hexdigest()}"
