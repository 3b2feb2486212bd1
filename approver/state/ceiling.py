"""A ceiling on API calls per second shared by every worker: a token bucket in Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from approver.state.common import PREFIX

log = logging.getLogger(__name__)

# Take one token if there is one; else answer how many milliseconds until there is.
# Redis's own clock, so every worker's process counts alike. KEYS: the bucket;
# ARGV: rate (tokens a second), burst (the bucket's size).
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('hmget', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('pexpire', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class Ceiling:
    """At most `rate` calls a second across every process that shares this Redis and
    `name`, with bursts of `burst` (a tenth of a second's worth unless told): in any one
    second, at most rate + burst calls. Call it before each API call: it returns when the
    call may go.

    Without Redis the call goes unpaced: it needs no Redis itself, and a worker that has
    lost Redis makes few calls.
    """

    def __init__(self, connection: redis.Redis, name: str, rate: float,
                 burst: float | None = None, sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key = f"{PREFIX}ceiling:{name}"
        self.rate, self.burst = rate, max(1.0, burst if burst is not None else rate / 10)
        self._take = connection.register_script(_TAKE)
        self._sleep = sleep
        self.waited = 0.0  # seconds this process spent waiting for the ceiling

    def __call__(self) -> None:
        while True:
            try:
                wait_ms = self._take(keys=[self.key], args=[self.rate, self.burst])
            except redis.RedisError as exc:
                log.debug("call ceiling %s not applied: %s", self.key, type(exc).__name__)
                return
            if not wait_ms:
                return
            pause = min(wait_ms / 1000, 1.0)
            self.waited += pause
            self._sleep(pause)
