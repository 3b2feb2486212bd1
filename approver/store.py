"""Redis state: per-request decision state, the decision log, locks and approved key ids."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis

from approver.errors import ApproverError

PREFIX = "approver:"
LOG_KEY = PREFIX + "log"
LOG_HEAD_KEY = PREFIX + "log:head"
LOG_MAXLEN = 1_000_000

# Request states. "applying" is written before any Dashboard call (an outbox), so a crash
# between deciding and applying is resumed from the recorded decision, never re-decided.
DECIDED, APPLYING, APPLIED, FAILED, SKIPPED, SHADOWED, WAITING = (
    "decided", "applying", "applied", "failed", "skipped", "shadowed", "waiting"
)
FINAL_STATES = frozenset({APPLIED, SKIPPED, SHADOWED})
UNFINISHED_STATES = frozenset({DECIDED, APPLYING, FAILED})
UNFINISHED_KEY = PREFIX + "unfinished"
WAITS_KEY = PREFIX + "waiting"

_JSON_FIELDS = ("trace", "facts", "key_ids", "wait", "policies")
LOCK_TTL = 20.0
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def chain_hash(prev: str, body: str) -> str:
    """The hash that links one decision-log entry to the one before it."""
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


class Locked(ApproverError):
    """Another worker holds this request's lock."""


def now_iso() -> str:
    """The current time, RFC 3339 in UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """The service's state in Redis."""

    def __init__(self, connection: redis.Redis):
        self.redis = connection
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)

    # -- per-request state -------------------------------------------------------------
    @staticmethod
    def _state_key(request_id: str) -> str:
        return f"{PREFIX}request:{request_id}"

    def state(self, request_id: str) -> dict | None:
        """The recorded state of a key request, or None if never decided."""
        raw = self.redis.hgetall(self._state_key(request_id))
        if not raw:
            return None
        record = {k.decode(): v.decode() for k, v in raw.items()}
        for name in _JSON_FIELDS:
            if name in record:
                record[name] = json.loads(record[name]) if record[name] else None
        return record

    def states(self, request_ids: list[str]) -> list[str | None]:
        """The state name of each request (None if never decided), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hget(self._state_key(request_id), "state")
        return [v.decode() if v else None for v in pipe.execute()]

    def save_state(self, request_id: str, **fields) -> None:
        """Merge fields into the request's state; lists and dicts are stored as JSON."""
        encoded = {
            k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, list | dict | tuple)
            else ("" if v is None else str(v))
            for k, v in fields.items()
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._state_key(request_id), mapping=encoded)
        # Requests between deciding and done are kept in a set, so the reconciler resumes
        # them even when they have left Tyk's pending list.
        if fields.get("state") in UNFINISHED_STATES:
            pipe.sadd(UNFINISHED_KEY, request_id)
        elif "state" in fields:
            pipe.srem(UNFINISHED_KEY, request_id)
        pipe.execute()

    def unfinished(self) -> list[str]:
        """Requests decided but not yet applied (or failed while applying)."""
        return sorted(m.decode() for m in self.redis.smembers(UNFINISHED_KEY))

    # -- the decision log ----------------------------------------------------------------
    def log(self, event: str, request_id: str, **fields) -> str:
        """Append one entry to the decision log, chained to the one before; returns its id."""
        entry = {"event": event, "request_id": request_id, "at": now_iso(), **fields}
        body = json.dumps(entry, sort_keys=True, default=str)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # The head is read and the entry appended atomically (optimistic
                    # locking): concurrent writers never fork the chain.
                    pipe.watch(LOG_HEAD_KEY)
                    prev = (pipe.get(LOG_HEAD_KEY) or b"").decode()
                    digest = chain_hash(prev, body)
                    pipe.multi()
                    pipe.xadd(LOG_KEY, {"json": body, "prev": prev, "hash": digest},
                              maxlen=LOG_MAXLEN, approximate=True)
                    pipe.set(LOG_HEAD_KEY, digest)
                    entry_id, _ = pipe.execute()
                    return entry_id.decode()
                except redis.WatchError:
                    continue

    def verify_log(self, batch: int = 1000) -> tuple[int, str | None, str | None]:
        """Walk the log oldest first: (entries checked, first broken entry id, why)."""
        checked, expected_prev, start = 0, None, "-"
        while True:
            entries = self.redis.xrange(LOG_KEY, min=start, max="+", count=batch)
            for entry_id, data in entries:
                name = entry_id.decode()
                body = data.get(b"json", b"").decode()
                prev = data.get(b"prev", b"").decode()
                if expected_prev is not None and prev != expected_prev:
                    return checked, name, "its link to the entry before does not match"
                if data.get(b"hash", b"").decode() != chain_hash(prev, body):
                    return checked, name, "its content does not match its hash"
                expected_prev = data[b"hash"].decode()
                checked += 1
            if len(entries) < batch:
                break
            start = "(" + entries[-1][0].decode()
        head = (self.redis.get(LOG_HEAD_KEY) or b"").decode()
        if checked and head != expected_prev:
            return checked, None, "the newest entry is not the recorded head (entries removed)"
        return checked, None, None

    def entries(self, count: int = 50, request_id: str | None = None) -> list[dict]:
        """The latest log entries, newest first, optionally for one request."""
        found = []
        last = "+"
        while len(found) < count:
            batch = self.redis.xrevrange(LOG_KEY, max=last, min="-", count=500)
            for entry_id, data in batch:
                entry = json.loads(data[b"json"])
                entry["id"] = entry_id.decode()
                if request_id is None or entry.get("request_id") == request_id:
                    found.append(entry)
                    if len(found) == count:
                        break
            if len(batch) < 500:
                break
            last = "(" + batch[-1][0].decode()
        return found

    # -- locks -----------------------------------------------------------------------------
    @contextmanager
    def lock(self, request_id: str, ttl: float = LOCK_TTL) -> Iterator[None]:
        """Hold this request's lock, or raise Locked; released only by its owner.

        The lock is short-lived and renewed while held, so a worker killed while holding
        it blocks the request for at most `ttl` seconds, not for a whole job timeout.
        """
        key = f"{PREFIX}lock:{request_id}"
        token = secrets.token_hex(8)
        if not self.redis.set(key, token, nx=True, px=int(ttl * 1000)):
            raise Locked(f"key request {request_id} is being handled by another worker")
        released = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(key, token, ttl, released),
                                   daemon=True, name=f"lock-renewer-{request_id}")
        renewer.start()
        try:
            yield
        finally:
            released.set()
            renewer.join(timeout=1)
            self._release(keys=[key], args=[token])

    def _renew(self, key: str, token: str, ttl: float, released: threading.Event) -> None:
        while not released.wait(ttl / 4):
            try:
                if not self._extend(keys=[key], args=[token, int(ttl * 1000)]):
                    return  # lost (expired and taken): nothing left to renew
            except redis.RedisError:
                continue  # Redis away for a moment: try again, the TTL still runs

    def locked(self, request_id: str) -> bool:
        """Whether someone holds the request's lock now."""
        return bool(self.redis.exists(f"{PREFIX}lock:{request_id}"))

    # -- keys approved by this service, for revocation -----------------------------------
    def remember_keys(self, developer_id: str, key_ids: list[str], **about) -> None:
        """Record the key ids (hashes, never raw keys) approved for a developer."""
        if key_ids:
            value = json.dumps({**about, "at": now_iso()}, sort_keys=True)
            self.redis.hset(
                f"{PREFIX}keys:{developer_id}", mapping=dict.fromkeys(key_ids, value)
            )

    def approved_keys(self, developer_id: str) -> dict[str, dict]:
        """Key id -> what we know of its approval, for one developer."""
        raw = self.redis.hgetall(f"{PREFIX}keys:{developer_id}")
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def mark_revoked(self, developer_id: str, key_id: str, reason: str) -> None:
        """Note that a key we approved has been revoked (kept for the record)."""
        key = f"{PREFIX}keys:{developer_id}"
        about = json.loads(self.redis.hget(key, key_id) or "{}")
        about.update(revoked_at=now_iso(), revoked_because=reason)
        self.redis.hset(key, key_id, json.dumps(about, sort_keys=True))

    # -- requests waiting for a fact (billing) ------------------------------------------
    def park(self, request_id: str, developer_id: str, deadline: float) -> None:
        """Remember a waiting request: by deadline, and under its developer."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(WAITS_KEY, {request_id: deadline})
        pipe.sadd(f"{WAITS_KEY}:developer:{developer_id}", request_id)
        pipe.execute()

    def unpark(self, request_id: str, developer_id: str | None) -> None:
        """Forget a request that no longer waits."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(WAITS_KEY, request_id)
        if developer_id:
            pipe.srem(f"{WAITS_KEY}:developer:{developer_id}", request_id)
        pipe.execute()

    def waiting_for(self, developer_id: str) -> list[str]:
        """The requests of one developer that wait."""
        members = self.redis.smembers(f"{WAITS_KEY}:developer:{developer_id}")
        return sorted(m.decode() for m in members)

    def waiting(self, due_before: float | None = None) -> list[tuple[str, float]]:
        """Waiting requests with their deadlines, soonest first; only overdue ones if asked."""
        top = "+inf" if due_before is None else due_before
        return [(m.decode(), score) for m, score in
                self.redis.zrangebyscore(WAITS_KEY, "-inf", top, withscores=True)]

    # -- what workers last saw (read by /readyz, /metrics and `approver status`) ---------
    def publish_health(self, **fields) -> None:
        """Record what a worker saw of the Dashboard and the rules, with the time."""
        self.redis.hset(f"{PREFIX}health", mapping={
            **{k: "" if v is None else str(v) for k, v in fields.items()}, "at": now_iso()})

    def health(self) -> dict:
        """The last published health fields."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(f"{PREFIX}health").items()}

    # -- billing state (filled by billing events; read by the billing.* facts) -----------
    def billing(self, developer_id: str) -> dict | None:
        """The latest billing state of a developer, or None if never heard of."""
        raw = self.redis.hgetall(f"{PREFIX}billing:{developer_id}")
        return {k.decode(): v.decode() for k, v in raw.items()} or None
