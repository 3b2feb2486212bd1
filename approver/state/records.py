"""Request records: each key request's state (an outbox: the decision is written before any
Tyk call), and the indexes that follow it (unfinished, finished, the review inbox, each
developer's requests), plus webhook hints."""

from __future__ import annotations

import json
import time

import redis

from approver.state.common import PREFIX, now_iso
from approver.state.packed import pack, unpack

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
# Requests whose recorded decision's follow-up (its notifications, a billing check) is not
# queued yet, by when it was recorded: a crash in between leaves them to the reconciler.
FOLLOWUPS_KEY = PREFIX + "followups"
# Where the pipeline is done with a request until a person (or Tyk) decides it.
SETTLED_STATES = FINAL_STATES | {IN_REVIEW}

_JSON_FIELDS = ("trace", "facts", "key_ids", "wait", "policies", "policy_names",
                "request_fields", "held_before", "notes", "developer_fields",
                "developer_keys", "api_names", "approvals", "approval_deadline",
                "validator_facts")
_FORGET_SKIP = """
if redis.call('hget', KEYS[1], 'state') == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def state_key(request_id: str) -> str:
    """The Redis hash holding one request's record."""
    return f"{PREFIX}request:{request_id}"

def decode_state(raw: dict) -> dict | None:
    """A record as HGETALL answered it, decoded (None if there is none)."""
    if not raw:
        return None
    record = {}
    for key, value in raw.items():
        name = key.decode()
        if name in _JSON_FIELDS:  # packed (approver.state.packed), or plain JSON before
            text = unpack(value)
            record[name] = json.loads(text) if text else None
        else:
            record[name] = value.decode()
    return record

def _encoded(name: str, value) -> str | bytes:
    """A field's value as stored: lists and dicts as JSON (packed where decode_state
    unpacks them), None as ""."""
    if isinstance(value, list | dict | tuple):
        text = json.dumps(value, sort_keys=True, default=str)
        return pack(text) if name in _JSON_FIELDS else text
    return "" if value is None else str(value)


def developer_key(developer_id: str) -> str:
    """The sorted set of one developer's requests."""
    return f"{PREFIX}developer:{developer_id}:requests"

class Records:
    """Per-request state (mixed into `Store`, which gives it `self.redis`)."""

    def state(self, request_id: str) -> dict | None:
        """The recorded state of a key request, or None if never decided."""
        return decode_state(self.redis.hgetall(state_key(request_id)))

    def states(self, request_ids: list[str]) -> list[str | None]:
        """The state name of each request (None if never decided), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hget(state_key(request_id), "state")
        return [v.decode() if v else None for v in pipe.execute()]

    def records(self, request_ids: list[str]) -> list[dict | None]:
        """The recorded state of each request (None if never decided), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hgetall(state_key(request_id))
        return [decode_state(raw) for raw in pipe.execute()]

    def save_state(self, request_id: str, **fields) -> None:
        """Merge fields into the request's state; lists and dicts are stored as JSON."""
        pipe = self.redis.pipeline(transaction=True)
        self._queue_state(pipe, request_id, fields)
        pipe.execute()

    def _queue_state(self, pipe, request_id: str, fields: dict,
                     before: dict | None = None) -> None:
        """Queue the writes of `fields` and of the indexes that follow the state.

        `before`: the record as stored now ({} for none), when the caller knows it exactly
        (read or written under the request's lock in this run); removals it shows to be
        no-ops are then not sent. A request is in an index only while its stored state
        says so: the index is written in the transaction that writes the state, and
        retention drops both together.
        """
        encoded = {k: _encoded(k, v) for k, v in fields.items()}
        key = state_key(request_id)
        known = before is not None
        was = (before or {}).get("state")
        if (fields.get("state") not in (None, FAILED, ERROR) and "error" not in fields
                and (not known or "error" in before or "error_permanent" in before)):
            pipe.hdel(key, "error", "error_permanent")  # what failed before is in the log
        pipe.hset(key, mapping=encoded)
        # Requests between deciding and done are kept in a set, so the reconciler resumes
        # them even when they have left Tyk's pending list.
        if fields.get("state") in UNFINISHED_STATES:
            pipe.sadd(UNFINISHED_KEY, request_id)
        elif "state" in fields and (not known or was in UNFINISHED_STATES):
            pipe.srem(UNFINISHED_KEY, request_id)
        # Finished records are indexed by when they finished, for retention to drop the
        # oldest; any other state takes the record out of retention's reach.
        if fields.get("state") in FINAL_STATES:
            pipe.zadd(RECORDS_KEY, {request_id: time.time()})
        elif "state" in fields and (not known or was in FINAL_STATES):
            pipe.zrem(RECORDS_KEY, request_id)
        # The inbox follows the state in the same transaction: a request enters it when
        # left for a person or a fact, and leaves it with whatever decides it.
        if fields.get("state") in INBOX_STATES:
            pipe.zadd(INBOX_KEY, {request_id: time.time()}, nx=True)
        elif "state" in fields and (not known or was in INBOX_STATES):
            pipe.zrem(INBOX_KEY, request_id)
        if fields.get("decision_id") and fields.get("developer_id"):
            key = developer_key(fields["developer_id"])
            pipe.zadd(key, {request_id: time.time()}, nx=True)
            pipe.zremrangebyrank(key, 0, -DEVELOPER_HISTORY - 1)  # the latest ones only

    @staticmethod
    def queue_followup(pipe, request_id: str) -> None:
        """Mark, in the transaction that records a decision, that its follow-up is due."""
        pipe.zadd(FOLLOWUPS_KEY, {request_id: time.time()})

    def followed_up(self, request_id: str) -> None:
        """The follow-up of the request's decision is queued: unmark it."""
        self.redis.zrem(FOLLOWUPS_KEY, request_id)

    def followups_due(self, marked_before: float) -> list[str]:
        """Requests whose follow-up was marked before `marked_before` and is still due."""
        return [m.decode() for m in
                self.redis.zrangebyscore(FOLLOWUPS_KEY, "-inf", marked_before)]

    def skip_unknown(self, request_id: str, reason: str, ttl: int) -> None:
        """Record that Tyk does not know a request: a "skipped" state that expires.

        Ids Tyk does not know leave nothing permanent (no log entry either): anyone can
        name one, and one that shows up later is decided as any other.
        """
        key = state_key(request_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"state": SKIPPED, "reason": reason, "not_found": "1",
                                "updated_at": now_iso()})
        pipe.expire(key, ttl)
        pipe.srem(UNFINISHED_KEY, request_id)
        pipe.execute()

    def forget_skip(self, request_id: str) -> bool:
        """Drop a "skipped" state (the request is pending again); True if there was one."""
        # Checked and deleted in one step: a decision recorded meanwhile stays.
        return bool(self.redis.eval(_FORGET_SKIP, 1, state_key(request_id), SKIPPED))

    def save_hint(self, request_id: str, hint: dict, ttl: int = 86400) -> None:
        """Keep what a webhook said of a request (checked before any use), for a day."""
        self.redis.set(f"{PREFIX}hint:{request_id}", json.dumps(hint, sort_keys=True), ex=ttl)

    def hint(self, request_id: str) -> dict | None:
        """What a webhook said of a request, if it said anything lately."""
        raw = self.redis.get(f"{PREFIX}hint:{request_id}")
        return json.loads(raw) if raw else None

    def developer_requests(self, developer_id: str, count: int = 50) -> list[str]:
        """The requests of one developer this service decided, newest first."""
        members = self.redis.zrevrange(developer_key(developer_id), 0, count - 1)
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
            if one.info("replication").get("connected_slaves"):
                one.set(f"{PREFIX}replication", now_iso(), ex=60)
                if one.execute_command("WAIT", 1, int(timeout * 1000)) < 1:
                    return False
            # With no replica connected none can be promoted over the write, unless this
            # node is the one being failed over: its replica promoted already, the node
            # not yet demoted (it then drops what it took meanwhile). Sentinel names the
            # promoted replica as soon as the failover has picked it.
            return self._still_master(one)

    def _still_master(self, one: redis.Redis) -> bool:
        """Whether every Sentinel that answers names the node this client is connected to
        as the master, with no failover in progress (true without Sentinel).

        Every Sentinel is asked: only the one leading a failover knows it has begun.
        """
        pool = self.redis.connection_pool
        manager = getattr(pool, "sentinel_manager", None)
        if manager is None:
            return True
        here = (one.connection.host, int(one.connection.port))
        answered = False
        for sentinel in manager.sentinels:
            try:
                state = sentinel.sentinel_master(pool.service_name)
            except redis.RedisError:
                continue  # one Sentinel away: the others say
            answered = True
            if ("failover_in_progress" in str(state.get("flags"))
                    or (state.get("ip"), int(state.get("port") or 0)) != here):
                return False
        return answered

    def unfinished(self) -> list[str]:
        """Requests decided but not yet applied (or failed while applying)."""
        return sorted(m.decode() for m in self.redis.smembers(UNFINISHED_KEY))
