"""The decision log: a Redis stream whose entries are chained by hashes, so that an entry
changed or removed shows; its export as JSON lines, which the same chain checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from approver.errors import ApproverError
from approver.state.common import PREFIX, now_iso
from approver.state.packed import pack, unpack

LOG_KEY = PREFIX + "log"
LOG_HEAD_KEY = PREFIX + "log:head"
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



def chain_hash(prev: str, body: str) -> str:
    """The hash that links one decision-log entry to the one before it."""
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


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


class DecisionLog:
    """Appending to and reading the decision log (mixed into `Store`: `self.redis`,
    `self.retention`, `self._head`)."""

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
            # The body is stored packed (approver.state.packed); the hash is of its text.
            pipe.eval(_APPEND, 2, LOG_HEAD_KEY, LOG_KEY, prev, pack(body), digest,
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
                       data.get(b"hash", b"").decode(), unpack(data.get(b"json", b"")))
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

    def entries(self, count: int = 50, request_id: str | None = None,
                match: Callable[[dict], bool] | None = None, before: str = "+") -> list[dict]:
        """The latest log entries, newest first, optionally for one request, only those
        `match` accepts, and only older than the entry id `before`."""
        found = []
        last = before if before == "+" else "(" + before
        while len(found) < count:
            batch = self.redis.xrevrange(LOG_KEY, max=last, min="-", count=500)
            for entry_id, data in batch:
                entry = json.loads(unpack(data[b"json"]))
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


def export_line(entry_id: str, prev: str, digest: str, body: str) -> str:
    """One log entry as a line of an export: its own fields, then its place in the chain
    (enough to check it again)."""
    return json.dumps({**json.loads(body), "id": entry_id, "prev": prev, "hash": digest},
                      sort_keys=True) + "\n"


def read_export(lines: Iterable[str]) -> Iterator[tuple[str, str, str, str]]:
    """(id, prev, hash, body) of each line of an export, as the log held them."""
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            chain = [entry.pop(k) for k in ("id", "prev", "hash")]
        except (ValueError, KeyError, AttributeError, TypeError):
            raise ApproverError(f"line {n} is not an exported log entry") from None
        yield chain[0], chain[1], chain[2], json.dumps(entry, sort_keys=True, default=str)
