"""Console accounts and sessions in Redis (so every web replica sees them): local accounts'
passwords as argon2 hashes, and the server side of each signed-in session.

A person is named by how they signed in and who that way says they are: `local:alice`,
`oidc:ops@example.com`, `proxy:ops@example.com` (a proxy's `alice` is not the local one).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from approver.errors import ApproverError
from approver.state.common import PREFIX, now_iso
from approver.state.store import Store

ACCOUNTS_KEY = PREFIX + "console:accounts"
SESSION_KEY = PREFIX + "console:session:"  # + session id: who, how, from where, until when
SESSIONS_KEY = PREFIX + "console:sessions:"  # + person (local:alice): their session ids
WAYS = ("local", "oidc", "proxy")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
MIN_PASSWORD, MAX_PASSWORD = 12, 128  # the one limit: the command line, the store, the form
MIN_STRENGTH = 3  # zxcvbn's score (0-4): 3 is "safely unguessable" offline at a slow hash
# Sized for a web tier, not the library's 64 MiB default: each login being checked holds
# this much memory (OWASP's first argon2id choice: 19 MiB, 2 passes, 1 lane).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
HASHES_AT_ONCE = 2  # per process: a burst of logins waits for these instead of piling up
HASH_WAIT = 5.0  # seconds a login waits for one before it is told to come back
_hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)
# Checks run on these threads only: the C allocator keeps a thread's freed memory for that
# thread, so checks spread over a web worker's 16 threads would keep 16 checks' worth.
_checkers = ThreadPoolExecutor(HASHES_AT_ONCE, thread_name_prefix="password-check")


@cache
def _dummy() -> str:
    """Checked against when the name is unknown, so a login takes as long either way.

    Made at the first sign-in (whatever the name), on a checker thread, not at import:
    hashing takes 19 MiB, which every web worker (and the CLI) would otherwise reach at
    start and keep as its peak.
    """
    return _checkers.submit(_hasher.hash, "no such account: constant-time refusal").result()


class AccountError(ApproverError):
    """An account cannot be added or removed as asked; the message says why."""


class Busy(ApproverError):
    """Every password check this process allows at once is in use: come back shortly."""


def person(way: str, name: str) -> str:
    """How a person is named in sessions and the audit: the way in, then who."""
    return f"{way}:{name}"


def check_name(name: str) -> str:
    """`name` if usable as an account name (letters, digits, . _ @ -; up to 64)."""
    if not NAME.match(name or ""):
        raise AccountError(f"{name!r} is not a usable name: letters, digits, '.', '_', '@' "
                           "and '-', at most 64, starting with a letter or digit")
    return name


def check_password(name: str, password: str) -> str:
    """`password` if long enough, not too long, and not common or trivial (zxcvbn)."""
    from zxcvbn import zxcvbn  # its word lists cost 13 MiB: only where passwords are set

    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} and at most "
                           f"{MAX_PASSWORD} characters")
    verdict = zxcvbn(password, user_inputs=[name, "approver", "tyk", "console", "admin"],
                     max_length=MAX_PASSWORD)
    if verdict["score"] < MIN_STRENGTH:
        hint = " ".join([verdict["feedback"]["warning"], *verdict["feedback"]["suggestions"]])
        raise AccountError("the password is too easy to guess"
                           + (f": {hint.strip()}" if hint.strip() else ""))
    return password


GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}\Z")
MAX_GROUPS = 50  # per person: beyond this a provider's list is cut, not stored whole


def check_group(group: str) -> str:
    """`group` if usable as a group name (letters, digits, . _ : @ / -; up to 64)."""
    if not GROUP.match(group or ""):
        raise AccountError(f"{group!r} is not a usable group name: letters, digits, '.', "
                           "'_', ':', '@', '/' and '-', at most 64")
    return group


def clean_groups(groups) -> list[str]:
    """The usable group names among what a provider or proxy says, sorted, at most 50."""
    return sorted({g.strip() for g in groups if GROUP.match(str(g).strip())})[:MAX_GROUPS]


def exists(store: Store, name: str) -> bool:
    """Whether a local account of that name exists."""
    return bool(store.redis.hexists(ACCOUNTS_KEY, name))


def add(store: Store, name: str, password: str, email: str = "",
        groups: tuple[str, ...] = ()) -> int | None:
    """Store an account's password hash, email and groups, or replace them and end the
    sessions signed in with the old password: None if the account is new, else how many
    sessions ended."""
    check_name(name)
    check_password(name, password)
    for group in groups:
        check_group(group)
    # A new stamp each time: sessions hold the stamp they signed in with, and lapse with it.
    record = json.dumps({"hash": _hasher.hash(password), "stamp": secrets.token_hex(8),
                         "created_at": now_iso(), "email": check_email(email),
                         "groups": sorted(set(groups))})
    if store.redis.hset(ACCOUNTS_KEY, name, record):
        return None
    return end_all(store, person("local", name))


def check_email(email: str) -> str:
    """`email` if it looks like one address (or is empty)."""
    email = (email or "").strip()
    if email and not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,189}", email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def set_profile(store: Store, name: str, email: str | None = None,
                groups: tuple[str, ...] | None = None) -> bool:
    """Change an account's email or groups (not its password, so its sessions stay);
    False if there is no such account. Signed-in people's groups are re-read per request."""
    for group in groups or ():
        check_group(group)
    raw = store.redis.hget(ACCOUNTS_KEY, name)
    if not raw:
        return False
    record = json.loads(raw)
    if email is not None:
        record["email"] = check_email(email)
    if groups is not None:
        record["groups"] = sorted(set(groups))
    store.redis.hset(ACCOUNTS_KEY, name, json.dumps(record))
    return True


def profile(store: Store, name: str) -> dict | None:
    """A local account's email and groups (never its hash); None if there is none."""
    raw = store.redis.hget(ACCOUNTS_KEY, name) if NAME.match(name or "") else None
    if not raw:
        return None
    record = json.loads(raw)
    return {"name": name, "email": record.get("email") or "",
            "groups": list(record.get("groups") or [])}


def remove(store: Store, who: str) -> tuple[bool, int]:
    """End every session of a person (`oidc:…`, `proxy:…`, `local:…` or a local name) and
    delete their local account: whether there was an account, and how many sessions ended."""
    way, _, name = who.partition(":")
    if way not in WAYS or not name:
        way, name = "local", who
    removed = store.redis.hdel(ACCOUNTS_KEY, name) if way == "local" else 0
    return bool(removed), end_all(store, person(way, name))


def names(store: Store) -> list[str]:
    """Every local account's name."""
    return sorted(n.decode() for n in store.redis.hkeys(ACCOUNTS_KEY))


def any_exist(store: Store) -> bool:
    """Whether local accounts are set up (the console offers a password login then)."""
    return bool(store.redis.hlen(ACCOUNTS_KEY))


def stamp(store: Store, name: str) -> str | None:
    """The stamp of the account's current password; None if there is no such account."""
    raw = store.redis.hget(ACCOUNTS_KEY, name)
    return json.loads(raw).get("stamp", "") if raw else None


def verify(store: Store, name: str, password: str) -> str | None:
    """The account's stamp if the password is its own, else None; as slow for an unknown
    name as a known one. Raises Busy if this process is checking too many at once."""
    dummy = _dummy()  # made for a known name too: the first sign-in is as slow either way
    raw = store.redis.hget(ACCOUNTS_KEY, name) if NAME.match(name or "") else None
    record = json.loads(raw) if raw else {"hash": dummy}
    if not _hashing.acquire(timeout=HASH_WAIT):
        raise Busy("too many sign-ins are being checked at once")
    try:
        if not (_checkers.submit(_hasher.verify, record["hash"], password).result()
                and raw is not None):
            return None
        if _hasher.check_needs_rehash(record["hash"]):  # set with costlier parameters
            record["hash"] = _checkers.submit(_hasher.hash, password).result()
            store.redis.hset(ACCOUNTS_KEY, name, json.dumps(record))
    except (VerificationError, InvalidHashError):
        return None
    finally:
        _hashing.release()
    return record.get("stamp", "")


# -- sessions: the server side of a signed session cookie ---------------------------------
def start_session(store: Store, who: str, way: str, origin: str, idle: int, lifetime: int,
                  **facts) -> str:
    """A new session for a signed-in person (with what their way in re-checks on each
    request); its id (kept in their signed cookie)."""
    sid = secrets.token_urlsafe(24)
    pipe = store.redis.pipeline(transaction=True)
    pipe.set(SESSION_KEY + sid, json.dumps({
        "name": who, "via": way, "from": origin, "started_at": now_iso(),
        "ends": int(time.time()) + lifetime, **facts}), ex=max(1, min(idle, lifetime)))
    pipe.sadd(SESSIONS_KEY + who, sid)
    pipe.expire(SESSIONS_KEY + who, lifetime)  # ids of lapsed sessions do not pile up
    pipe.execute()
    return sid


def touch_session(store: Store, sid: str, idle: int) -> dict | None:
    """The session, its idle time restarted; None if it ended, sat idle too long or is past
    its lifetime."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.get(SESSION_KEY + sid)
    pipe.expire(SESSION_KEY + sid, idle)
    raw, _ = pipe.execute()
    record = json.loads(raw) if raw else None
    if record is None:
        return None
    left = int(record.get("ends", 0)) - int(time.time())
    if left <= 0:  # also a session from before lifetimes, or a name without its way in
        end_session(store, sid, record.get("name", ""))
        return None
    if left < idle:
        store.redis.expire(SESSION_KEY + sid, left)
    return record


def end_session(store: Store, sid: str, who: str) -> None:
    """End one session (logout)."""
    pipe = store.redis.pipeline(transaction=True)
    pipe.delete(SESSION_KEY + sid)
    pipe.srem(SESSIONS_KEY + who, sid)
    pipe.execute()


def end_all(store: Store, who: str) -> int:
    """End every session of one person; how many were still open."""
    sids = [s.decode() for s in store.redis.smembers(SESSIONS_KEY + who)]
    pipe = store.redis.pipeline(transaction=True)
    for sid in sids:
        pipe.delete(SESSION_KEY + sid)
    pipe.delete(SESSIONS_KEY + who)
    return sum(pipe.execute()[:len(sids)])
