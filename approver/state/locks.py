"""Per-request locks: short-lived, renewed while held, released only by their holder."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from approver.errors import ApproverError
from approver.state.common import PREFIX
from approver.state.records import decode_state, state_key

LOCK_TTL = 10.0  # renewed every 2.5 s while held; a dead holder blocks for 10 s at most
# Who holds a lock, for whoever looks at one: this host and process, then a random part.
_HOLDER = f"{socket.gethostname()}:{os.getpid()}"
# Take a request's lock (and read its state) in one step. A try whose answer was lost
# (Redis stopped right after running it) is sent again by redis-py once it reconnects:
# finding its own token, it has the lock, instead of taking itself for another worker
# and leaving a lock nobody releases. KEYS: lock, [state]; ARGV: token, ttl ms.
# A free lock is taken by the SET NX alone; the GET runs only when it is held.
_ACQUIRE = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('get', KEYS[1]) ~= ARGV[1] then return {0} end
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if #KEYS < 2 then return {1, {}} end
return {1, redis.call('hgetall', KEYS[2])}
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def lock_key(request_id: str) -> str:
    """The key of one request's lock."""
    return f"{PREFIX}lock:{request_id}"


def developer_lock_key(developer_id: str) -> str:
    """The key of the lock that serialises one developer's billing reactions."""
    return f"{PREFIX}lock:developer:{developer_id}"


class Locked(ApproverError):
    """Another worker holds this request's lock."""


class Locks:
    """Taking and releasing request locks (mixed into `Store`: `self.redis`)."""

    def __init__(self, connection: redis.Redis):
        self._acquire = connection.register_script(_ACQUIRE)
        self._release = connection.register_script(_RELEASE)
        self._extend = connection.register_script(_EXTEND)
        self._renewer = _Renewer(self)

    @contextmanager
    def lock_and_state(self, request_id: str, ttl: float = LOCK_TTL) -> Iterator[dict | None]:
        """Hold this request's lock, or raise Locked, yielding its `state` read in the same
        round trip; released only by its owner.

        The lock is short-lived and renewed while held, so a worker killed while holding
        it blocks the request for at most `ttl` seconds, not for a whole job timeout.
        """
        with self._hold([lock_key(request_id), state_key(request_id)], ttl,
                        f"key request {request_id}") as raw:
            yield decode_state(dict(zip(raw[::2], raw[1::2], strict=True)))

    @contextmanager
    def developer_lock(self, developer_id: str, ttl: float = LOCK_TTL) -> Iterator[None]:
        """Hold the lock of one developer's billing reactions, waiting for it (at most a
        lock's lifetime and a little: a dead holder's lapses), else raise Locked."""
        with self._hold([developer_lock_key(developer_id)], ttl,
                        f"developer {developer_id}'s billing", wait=ttl + 2):
            yield

    @contextmanager
    def _hold(self, keys: list[str], ttl: float, what: str,
              wait: float = 0) -> Iterator[list]:
        key = keys[0]
        token = f"{_HOLDER}:{secrets.token_hex(8)}"
        give_up = time.monotonic() + wait
        while True:
            try:
                # {1, state} when taken, {0} when another holds it: never a pair to unpack.
                answer = self._acquire(keys=keys, args=[token, int(ttl * 1000)])
            except redis.RedisError:
                self._renewer.release_later(key, token, ttl)  # it may have been taken
                raise
            if answer[0]:
                break
            if time.monotonic() >= give_up:
                raise Locked(f"{what} is being handled by another worker")
            time.sleep(0.1)
        # One thread per Store renews every held lock every ttl/4 (not a thread per lock).
        self._renewer.add(key, token, ttl)
        try:
            yield answer[1]
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
        return bool(self.redis.exists(lock_key(request_id)))


class _Renewer:
    """One daemon thread per Store that renews each held lock every ttl/4 while it is held,
    and releases the locks whose release Redis could not take at the time.

    As the per-lock thread it replaces: a lock that was lost (expired and taken by another)
    is dropped, and a Redis error is retried at the next interval while the TTL runs.
    """

    RELEASE_RETRY = 0.5  # seconds between tries of a release that failed

    def __init__(self, store: Locks):
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
