"""Redis state: per-request decision state, the decision log, locks and approved key ids."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from approver.config import Settings
from approver.errors import ApproverError

PREFIX = "approver:"
LOG_KEY = PREFIX + "log"
LOG_HEAD_KEY = PREFIX + "log:head"
# Finished requests' records by the time they finished: what retention drops first.
RECORDS_KEY = PREFIX + "records"

# Request states. "applying" is written before any Dashboard call (an outbox), so a crash
# between deciding and applying is resumed from the recorded decision, never re-decided.
# "error": the pipeline stopped before deciding (the `error` field says why).
DECIDED, APPLYING, APPLIED, FAILED, SKIPPED, SHADOWED, WAITING, ERROR = (
    "decided", "applying", "applied", "failed", "skipped", "shadowed", "waiting", "error"
)
# Left pending in Tyk for a person: in the review inbox until someone decides it.
IN_REVIEW = "in_review"
FINAL_STATES = frozenset({APPLIED, SKIPPED, SHADOWED})
UNFINISHED_STATES = frozenset({DECIDED, APPLYING, FAILED})
UNFINISHED_KEY = PREFIX + "unfinished"
WAITS_KEY = PREFIX + "waiting"
# The review inbox: requests in these states, scored by when they entered it.
INBOX_STATES = frozenset({IN_REVIEW, WAITING})
INBOX_KEY = PREFIX + "inbox"
DEVELOPER_HISTORY = 100  # a developer's latest requests kept for the review pages
# Where the pipeline is done with a request until a person (or Tyk) decides it.
SETTLED_STATES = FINAL_STATES | {IN_REVIEW}

_JSON_FIELDS = ("trace", "facts", "key_ids", "wait", "policies", "policy_names",
                "request_fields", "held_before")
LOCK_TTL = 10.0  # renewed every 2.5 s while held; a dead holder blocks for 10 s at most
# Who holds a lock, for whoever looks at one: this host and process, then a random part.
_HOLDER = f"{socket.gethostname()}:{os.getpid()}"
# Take a request's lock (and read its state) in one step. A try whose answer was lost
# (Redis stopped right after running it) is sent again by redis-py once it reconnects:
# finding its own token, it has the lock, instead of taking itself for another worker
# and leaving a lock nobody releases. KEYS: lock, state; ARGV: token, ttl ms, read state.
_ACQUIRE = """
local held = redis.call('get', KEYS[1])
if held and held ~= ARGV[1] then return {0} end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '1' then return {1, redis.call('hgetall', KEYS[2])} end
return {1, {}}
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_FORGET_SKIP = """
if redis.call('hget', KEYS[1], 'state') == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Append one entry to the log if the head is still the one the entry was chained to
# (compare-and-set, atomic in Redis); else answer the head, to chain to it and try again.
# KEYS: head, log; ARGV: prev, body, hash, maxlen.
_APPEND = """
local head = redis.call('get', KEYS[1]) or ''
if head == ARGV[3] then
    -- This very entry, appended by a try whose answer was lost: done already.
    return {1, redis.call('xrevrange', KEYS[2], '+', '-', 'COUNT', 1)[1][1]}
end
if head ~= ARGV[1] then return {0, head} end
local id = redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
                      'json', ARGV[2], 'prev', ARGV[1], 'hash', ARGV[3])
redis.call('set', KEYS[1], ARGV[3])
return {1, id}
"""


# Drop the records listed whose finishing time is still at most ARGV[1] (one a request
# decided again meanwhile is left alone). KEYS: the records index; ARGV: limit, ids...
_DROP = f"""
local dropped = 0
for i = 2, #ARGV do
  local score = redis.call('zscore', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('del', '{PREFIX}request:' .. ARGV[i])
    redis.call('zrem', KEYS[1], ARGV[i])
    dropped = dropped + 1
  end
end
return dropped
"""


def chain_hash(prev: str, body: str) -> str:
    """The hash that links one decision-log entry to the one before it."""
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Retention:
    """How much Redis keeps: the decision log and finished requests' records, each by
    count and by age (seconds; None keeps any age)."""

    log_max_entries: int = Settings.log_max_entries
    log_max_age: int | None = Settings.log_max_age
    record_max_entries: int = Settings.record_max_entries
    record_max_age: int | None = Settings.record_max_age

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        """The retention the settings ask for."""
        return cls(settings.log_max_entries, settings.log_max_age,
                   settings.record_max_entries, settings.record_max_age)


@dataclass(frozen=True)
class LogCheck:
    """What walking the decision log's hash chain found."""

    checked: int
    broken: str | None = None
    why: str | None = None
    first: str | None = None
    anchor: str = ""  # the oldest kept entry's link to the one before ("" if none was)

    @property
    def anchored(self) -> bool:
        """Whether older entries were trimmed, so the chain starts at a kept entry."""
        return bool(self.anchor)


def check_chain(entries: Iterable[tuple[str, str, str, str]],
                expected_prev: str | None = None) -> LogCheck:
    """Check (id, prev, hash, body) entries, oldest first, link by link."""
    checked, first, anchor = 0, None, ""
    for name, prev, digest, body in entries:
        if first is None:
            first, anchor = name, prev
        if expected_prev is not None and prev != expected_prev:
            return LogCheck(checked, name, "its link to the entry before does not match",
                            first, anchor)
        if digest != chain_hash(prev, body):
            return LogCheck(checked, name, "its content does not match its hash", first, anchor)
        expected_prev = digest
        checked += 1
    return LogCheck(checked, None, None, first, anchor)


class Locked(ApproverError):
    """Another worker holds this request's lock."""


def now_iso() -> str:
    """The current time, RFC 3339 in UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """The service's state in Redis."""

    def __init__(self, connection: redis.Redis, retention: Retention | None = None):
        self.redis = connection
        self.retention = retention or Retention()
        self._acquire = connection.register_script(_ACQUIRE)
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)
        # The log head this process last wrote or saw: the first guess when appending.
        self._head: str | None = None
        self._renewer = _Renewer(self)

    # -- per-request state -------------------------------------------------------------
    @staticmethod
    def _state_key(request_id: str) -> str:
        return f"{PREFIX}request:{request_id}"

    def state(self, request_id: str) -> dict | None:
        """The recorded state of a key request, or None if never decided."""
        return self._decode_state(self.redis.hgetall(self._state_key(request_id)))

    @staticmethod
    def _decode_state(raw: dict) -> dict | None:
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

    def records(self, request_ids: list[str]) -> list[dict | None]:
        """The recorded state of each request (None if never decided), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hgetall(self._state_key(request_id))
        return [self._decode_state(raw) for raw in pipe.execute()]

    def save_state(self, request_id: str, **fields) -> None:
        """Merge fields into the request's state; lists and dicts are stored as JSON."""
        pipe = self.redis.pipeline(transaction=True)
        self._queue_state(pipe, request_id, fields)
        pipe.execute()

    def _queue_state(self, pipe, request_id: str, fields: dict) -> None:
        encoded = {
            k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, list | dict | tuple)
            else ("" if v is None else str(v))
            for k, v in fields.items()
        }
        key = self._state_key(request_id)
        if fields.get("state") not in (None, FAILED, ERROR) and "error" not in fields:
            pipe.hdel(key, "error", "error_permanent")  # what failed before is in the log
        pipe.hset(key, mapping=encoded)
        # Requests between deciding and done are kept in a set, so the reconciler resumes
        # them even when they have left Tyk's pending list.
        if fields.get("state") in UNFINISHED_STATES:
            pipe.sadd(UNFINISHED_KEY, request_id)
        elif "state" in fields:
            pipe.srem(UNFINISHED_KEY, request_id)
        # Finished records are indexed by when they finished, for retention to drop the
        # oldest; any other state takes the record out of retention's reach.
        if fields.get("state") in FINAL_STATES:
            pipe.zadd(RECORDS_KEY, {request_id: time.time()})
        elif "state" in fields:
            pipe.zrem(RECORDS_KEY, request_id)
        # The inbox follows the state in the same transaction: a request enters it when
        # left for a person or a fact, and leaves it with whatever decides it.
        if fields.get("state") in INBOX_STATES:
            pipe.zadd(INBOX_KEY, {request_id: time.time()}, nx=True)
        elif "state" in fields:
            pipe.zrem(INBOX_KEY, request_id)
        if fields.get("decision_id") and fields.get("developer_id"):
            key = self._developer_key(fields["developer_id"])
            pipe.zadd(key, {request_id: time.time()}, nx=True)
            pipe.zremrangebyrank(key, 0, -DEVELOPER_HISTORY - 1)  # the latest ones only

    def save_and_log(self, request_id: str, fields: dict, event: str, entry: dict,
                     also: Callable[[redis.client.Pipeline], None] | None = None) -> str:
        """`save_state(request_id, **fields)`, then `log(event, request_id, **entry)`, in
        one MULTI/EXEC round trip (two if another writer moved the log head meanwhile);
        `also(pipe)` may queue more commands between the two. Returns the entry's id."""
        body = self._entry_body(event, request_id, entry)
        pipe = self.redis.pipeline(transaction=True)
        self._queue_state(pipe, request_id, fields)
        if also is not None:
            also(pipe)
        return self._append(body, pipe)

    def skip_unknown(self, request_id: str, reason: str, ttl: int) -> None:
        """Record that Tyk does not know a request: a "skipped" state that expires.

        Ids Tyk does not know leave nothing permanent (no log entry either): anyone can
        name one, and one that shows up later is decided as any other.
        """
        key = self._state_key(request_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"state": SKIPPED, "reason": reason, "not_found": "1",
                                "updated_at": now_iso()})
        pipe.expire(key, ttl)
        pipe.srem(UNFINISHED_KEY, request_id)
        pipe.execute()

    def forget_skip(self, request_id: str) -> bool:
        """Drop a "skipped" state (the request is pending again); True if there was one."""
        # Checked and deleted in one step: a decision recorded meanwhile stays.
        return bool(self.redis.eval(_FORGET_SKIP, 1, self._state_key(request_id), SKIPPED))

    def save_hint(self, request_id: str, hint: dict, ttl: int = 86400) -> None:
        """Keep what a webhook said of a request (checked before any use), for a day."""
        self.redis.set(f"{PREFIX}hint:{request_id}", json.dumps(hint, sort_keys=True), ex=ttl)

    def hint(self, request_id: str) -> dict | None:
        """What a webhook said of a request, if it said anything lately."""
        raw = self.redis.get(f"{PREFIX}hint:{request_id}")
        return json.loads(raw) if raw else None

    @staticmethod
    def _developer_key(developer_id: str) -> str:
        return f"{PREFIX}developer:{developer_id}:requests"

    def developer_requests(self, developer_id: str, count: int = 50) -> list[str]:
        """The requests of one developer this service decided, newest first."""
        members = self.redis.zrevrange(self._developer_key(developer_id), 0, count - 1)
        return [m.decode() for m in members]

    def inbox(self) -> list[tuple[str, float]]:
        """(request id, when it entered the inbox) for every request in it, oldest first."""
        return [(m.decode(), score) for m, score in
                self.redis.zrange(INBOX_KEY, 0, -1, withscores=True)]

    def replicated(self, timeout: float = 1.0) -> bool:
        """Whether every write made so far is safe from a failover: on at least one
        replica (waiting at most `timeout` seconds), or there is no replica to promote.

        WAIT waits for the writes of its own connection, and a pooled client's earlier
        writes may have gone through another; replication is one ordered stream, so a
        replica that has a write made now on this connection has every one before it.
        """
        with self.redis.client() as one:  # one connection for the write and the WAIT
            if not one.info("replication").get("connected_slaves"):
                return True  # no replica connected: none can be promoted over the write
            one.set(f"{PREFIX}replication", now_iso(), ex=60)
            return one.execute_command("WAIT", 1, int(timeout * 1000)) >= 1

    def unfinished(self) -> list[str]:
        """Requests decided but not yet applied (or failed while applying)."""
        return sorted(m.decode() for m in self.redis.smembers(UNFINISHED_KEY))

    # -- the decision log ----------------------------------------------------------------
    def log(self, event: str, request_id: str, **fields) -> str:
        """Append one entry to the decision log, chained to the one before; returns its id."""
        return self._append(self._entry_body(event, request_id, fields))

    @staticmethod
    def _entry_body(event: str, request_id: str, fields: dict) -> str:
        entry = {"event": event, "request_id": request_id, "at": now_iso(), **fields}
        return json.dumps(entry, sort_keys=True, default=str)

    def _append(self, body: str, pipe=None) -> str:
        """Append a log entry, chained to the head; `pipe`'s queued commands go first.

        The entry is chained to the head this process last knew and added only if that is
        still the head (compare-and-set in a Lua script, atomic): concurrent writers never
        fork the chain. If another writer moved the head, the script answers the new head
        and the entry is chained to it and sent again.
        """
        prev = self._head or ""
        while True:
            if pipe is None:
                pipe = self.redis.pipeline(transaction=False)
            digest = chain_hash(prev, body)
            # EVAL, not EVALSHA: no NOSCRIPT case after a Redis restart (Redis caches the
            # compiled script by its hash; the text is ~300 bytes).
            pipe.eval(_APPEND, 2, LOG_HEAD_KEY, LOG_KEY, prev, body, digest,
                      self.retention.log_max_entries)
            done, value = pipe.execute()[-1]
            value = value.decode()
            if done:
                self._head = digest
                return value
            prev, pipe = value, None

    def log_entries(self, since: str = "-", until: str = "+",
                    batch: int = 1000) -> Iterator[tuple[str, str, str, str]]:
        """(id, prev, hash, body) of each log entry between two ids, oldest first.

        Entry ids start with their time in milliseconds, so "1730000000000" selects
        from that moment on."""
        start = since
        while True:
            entries = self.redis.xrange(LOG_KEY, min=start, max=until, count=batch)
            for entry_id, data in entries:
                yield (entry_id.decode(), data.get(b"prev", b"").decode(),
                       data.get(b"hash", b"").decode(), data.get(b"json", b"").decode())
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0].decode()

    def verify_log(self) -> LogCheck:
        """Walk the log oldest first and check every link, up to the recorded head.

        Retention trims the oldest entries: the chain is then checked from the oldest
        entry kept (its own link is taken as given, and reported as the anchor)."""
        found = check_chain(self.log_entries())
        if found.why:
            return found
        last = self.redis.xrevrange(LOG_KEY, count=1)
        newest = last[0][1].get(b"hash", b"").decode() if last else None
        head = (self.redis.get(LOG_HEAD_KEY) or b"").decode()
        if found.checked and head != newest:
            return LogCheck(found.checked, None,
                            "the newest entry is not the recorded head (entries removed)",
                            found.first, found.anchor)
        return found

    # -- retention ---------------------------------------------------------------------
    def trim(self, now: float | None = None, batch: int = 1000) -> dict:
        """Apply the retention settings once: what was dropped.

        The log is capped by count as each entry is added; its age limit and both limits
        on finished requests' records are applied here (at most `batch` records a call).
        """
        now = time.time() if now is None else now
        r, done = self.retention, {"log_entries": 0, "records": 0}
        if r.log_max_age:
            done["log_entries"] = self.redis.xtrim(
                LOG_KEY, minid=f"{int((now - r.log_max_age) * 1000)}-0", approximate=True)
        limits = []
        if r.record_max_age:
            limits.append(now - r.record_max_age)
        excess = self.redis.zcard(RECORDS_KEY) - r.record_max_entries
        if excess > 0:
            oldest = self.redis.zrange(RECORDS_KEY, min(excess, batch) - 1,
                                       min(excess, batch) - 1, withscores=True)
            limits.extend(score for _, score in oldest)
        if limits:
            limit = max(limits)
            ids = self.redis.zrangebyscore(RECORDS_KEY, "-inf", limit, start=0, num=batch)
            if ids:
                done["records"] = self.redis.eval(_DROP, 1, RECORDS_KEY, repr(limit), *ids)
        return done

    def entries(self, count: int = 50, request_id: str | None = None,
                match: Callable[[dict], bool] | None = None, before: str = "+") -> list[dict]:
        """The latest log entries, newest first, optionally for one request, only those
        `match` accepts, and only older than the entry id `before`."""
        found = []
        last = before if before == "+" else "(" + before
        while len(found) < count:
            batch = self.redis.xrevrange(LOG_KEY, max=last, min="-", count=500)
            for entry_id, data in batch:
                entry = json.loads(data[b"json"])
                entry["id"] = entry_id.decode()
                if (request_id is None or entry.get("request_id") == request_id) and (
                        match is None or match(entry)):
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
        with self.lock_and_state(request_id, ttl, read_state=False):
            yield

    @contextmanager
    def lock_and_state(self, request_id: str, ttl: float = LOCK_TTL,
                       read_state: bool = True) -> Iterator[dict | None]:
        """`lock`, yielding the request's `state` read in the same round trip.

        The state is read right after the lock is taken (one pipeline: SET NX, HGETALL);
        when the lock is not had, what was read is thrown away.
        """
        key = f"{PREFIX}lock:{request_id}"
        token = f"{_HOLDER}:{secrets.token_hex(8)}"
        try:
            got, raw = self._acquire(keys=[key, self._state_key(request_id)],
                                     args=[token, int(ttl * 1000), int(read_state)])
        except redis.RedisError:
            self._renewer.release_later(key, token, ttl)  # it may have been taken
            raise
        if not got:
            raise Locked(f"key request {request_id} is being handled by another worker")
        # One thread per Store renews every held lock every ttl/4 (not a thread per lock).
        self._renewer.add(key, token, ttl)
        try:
            yield self._decode_state(dict(zip(raw[::2], raw[1::2], strict=True))) \
                if read_state else None
        finally:
            self._renewer.remove(key)
            try:
                self._release(keys=[key], args=[token])
            except redis.RedisError:
                # Redis away for a moment: released as soon as it answers again, rather
                # than left to block the request until its TTL runs out.
                self._renewer.release_later(key, token, ttl)

    def locked(self, request_id: str) -> bool:
        """Whether someone holds the request's lock now."""
        return bool(self.redis.exists(f"{PREFIX}lock:{request_id}"))

    # -- keys approved by this service, for revocation -----------------------------------
    def remember_keys(self, developer_id: str, key_ids: list[str], pipe=None,
                      **about) -> None:
        """Record the key ids (hashes, never raw keys) approved for a developer.

        With `pipe`, the write is queued on it rather than sent."""
        if key_ids:
            value = json.dumps({**about, "at": now_iso()}, sort_keys=True)
            (self.redis if pipe is None else pipe).hset(
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
        self.queue_park(pipe, request_id, developer_id, deadline)
        pipe.execute()

    @staticmethod
    def queue_park(pipe, request_id: str, developer_id: str, deadline: float) -> None:
        """`park`, queued on a pipeline (a MULTI/EXEC one keeps it atomic)."""
        pipe.zadd(WAITS_KEY, {request_id: deadline})
        pipe.sadd(f"{WAITS_KEY}:developer:{developer_id}", request_id)

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

    def note_refusal(self, call: str, ttl: int = 3600) -> None:
        """Note an API call refused for lack of rights (shown by health for `ttl` seconds)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(f"{PREFIX}health:refused", call, now_iso())
        pipe.expire(f"{PREFIX}health:refused", ttl)
        pipe.execute()

    def refusals(self) -> dict[str, str]:
        """Calls refused for lack of rights lately, with when: {"classic: PUT /…": at}."""
        raw = self.redis.hgetall(f"{PREFIX}health:refused")
        return {k.decode(): v.decode() for k, v in sorted(raw.items())}

    def health(self) -> dict:
        """The last published health fields."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(f"{PREFIX}health").items()}


class _Renewer:
    """One daemon thread per Store that renews each held lock every ttl/4 while it is held,
    and releases the locks whose release Redis could not take at the time.

    As the per-lock thread it replaces: a lock that was lost (expired and taken by another)
    is dropped, and a Redis error is retried at the next interval while the TTL runs.
    """

    RELEASE_RETRY = 0.5  # seconds between tries of a release that failed

    def __init__(self, store: Store):
        self._store = store
        self._held: dict[str, list] = {}  # key -> [token, ttl, next renewal (monotonic)]
        self._releases: dict[str, tuple[str, float]] = {}  # key -> (token, give up at)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, key: str, token: str, ttl: float) -> None:
        with self._cond:
            self._held[key] = [token, ttl, time.monotonic() + ttl / 4]
            self._start()

    def _start(self) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="lock-renewer")
            self._thread.start()
        self._cond.notify()

    def remove(self, key: str) -> None:
        with self._cond:
            self._held.pop(key, None)

    def release_later(self, key: str, token: str, ttl: float) -> None:
        """Release `key` if it still holds `token`, trying until Redis answers (or the
        lock would have expired anyway)."""
        with self._cond:
            self._releases[key] = (token, time.monotonic() + ttl)
            self._start()

    def _release_pending(self) -> None:
        with self._cond:
            pending = list(self._releases.items())
        for key, (token, give_up) in pending:
            try:
                self._store._release(keys=[key], args=[token])
            except redis.RedisError:
                if time.monotonic() < give_up:
                    continue
            with self._cond:
                if self._releases.get(key, (None,))[0] == token:
                    del self._releases[key]

    def _run(self) -> None:
        while True:
            if self._releases:
                self._release_pending()
            with self._cond:
                now = time.monotonic()
                due = [(k, h[0], h[1]) for k, h in self._held.items() if h[2] <= now]
                if not due:
                    soonest = min((h[2] for h in self._held.values()), default=None)
                    if self._releases:
                        soonest = min(soonest or now + self.RELEASE_RETRY,
                                      now + self.RELEASE_RETRY)
                    self._cond.wait(None if soonest is None else soonest - now)
                    continue
                for key, _, ttl in due:
                    self._held[key][2] = now + ttl / 4
            for key, token, ttl in due:
                try:
                    renewed = self._store._extend(keys=[key], args=[token, int(ttl * 1000)])
                except redis.RedisError:
                    continue  # Redis away for a moment: try again, the TTL still runs
                if not renewed:
                    with self._cond:  # lost (expired and taken): nothing left to renew
                        if self._held.get(key, [None])[0] == token:
                            del self._held[key]
