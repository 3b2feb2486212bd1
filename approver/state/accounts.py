"""Console accounts and sessions in Redis (so every web replica sees them): local accounts'
passwords as argon2 hashes, and the server side of each signed-in session."""

from __future__ import annotations

import json
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from approver.errors import ApproverError
from approver.state.common import PREFIX, now_iso
from approver.state.store import Store

ACCOUNTS_KEY = PREFIX + "console:accounts"
SESSION_KEY = PREFIX + "console:session:"  # + session id: who, how, from where
SESSIONS_KEY = PREFIX + "console:sessions:"  # + name: that person's session ids
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Checked against when the name is unknown, so a login takes as long either way.
_DUMMY = _hasher.hash("no such account: constant-time refusal")


class AccountError(ApproverError):
    """An account cannot be added or removed as asked; the message says why."""


def check_name(name: str) -> str:
    """`name` if usable as an account name (letters, digits, . _ @ -; up to 64)."""
    if not NAME.match(name or ""):
        raise AccountError(f"{name!r} is not a usable name: letters, digits, '.', '_', '@' "
                           "and '-', at most 64, starting with a letter or digit")
    return name


def add(store: Store, name: str, password: str) -> bool:
    """Store (or replace) an account's password hash; True if the account is new."""
    check_name(name)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    record = json.dumps({"hash": _hasher.hash(password), "created_at": now_iso()})
    return bool(store.redis.hset(ACCOUNTS_KEY, name, record))


def remove(store: Store, name: str) -> bool:
    """Delete an account and end its sessions; False if there was none."""
    removed = store.redis.hdel(ACCOUNTS_KEY, name)
    end_all(store, name)
    return bool(removed)


def names(store: Store) -> list[str]:
    """Every local account's name."""
    return sorted(n.decode() for n in store.redis.hkeys(ACCOUNTS_KEY))


def any_exist(store: Store) -> bool:
    """Whether local accounts are set up (the console offers a password login then)."""
    return bool(store.redis.hlen(ACCOUNTS_KEY))


def verify(store: Store, name: str, password: str) -> bool:
    """Whether the password is the account's; as slow for an unknown name as a known one."""
    raw = store.redis.hget(ACCOUNTS_KEY, name) if NAME.match(name or "") else None
    stored = json.loads(raw)["hash"] if raw else _DUMMY
    try:
        return _hasher.verify(stored, password) and raw is not None
    except (VerificationError, InvalidHashError):
        return False


# -- sessions: the server side of a signed session cookie ---------------------------------
def start_session(store: Store, name: str, via: str, origin: str, idle: int) -> str:
    """A new session for a signed-in person; its id (kept in their signed cookie)."""
    sid = secrets.token_urlsafe(24)
    pipe = store.redis.pipeline(transaction=True)
    pipe.set(SESSION_KEY + sid, json.dumps({"name": name, "via": via, "from": origin,
                                            "started_at": now_iso()}), ex=idle)
    pipe.sadd(SESSIONS_KEY + name, sid)
    pipe.expire(SESSIONS_KEY + name, 30 * 86400)  # ids of lapsed sessions do not pile up
    pipe.execute()
    return sid


def touch_session(store: Store, sid: str, idle: int) -> dict | None:
    """The session, its idle time restarted; None if it ended or sat idle too long."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.get(SESSION_KEY + sid)
    pipe.expire(SESSION_KEY + sid, idle)
    raw, _ = pipe.execute()
    return json.loads(raw) if raw else None


def end_session(store: Store, sid: str, name: str) -> None:
    """End one session (logout)."""
    pipe = store.redis.pipeline(transaction=True)
    pipe.delete(SESSION_KEY + sid)
    pipe.srem(SESSIONS_KEY + name, sid)
    pipe.execute()


def end_all(store: Store, name: str) -> int:
    """End every session of one person (their account was removed); how many."""
    sids = [s.decode() for s in store.redis.smembers(SESSIONS_KEY + name)]
    pipe = store.redis.pipeline(transaction=True)
    for sid in sids:
        pipe.delete(SESSION_KEY + sid)
    pipe.delete(SESSIONS_KEY + name)
    pipe.execute()
    return len(sids)
