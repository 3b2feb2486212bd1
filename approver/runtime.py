"""The per-process services a worker or command needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from approver import config
from approver.store import Store


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A Redis client with short socket timeouts, so an absent Redis fails fast."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def queue(connection: redis.Redis, name: str) -> Queue:
    """The service's RQ queue; jobs carry plain ids as JSON, never pickles."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


@dataclass
class Runtime:
    """Settings plus the clients built from them, one of each per process."""

    settings: config.Settings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.redis_url)

    @cached_property
    def store(self) -> Store:
        return Store(self.redis)

    @cached_property
    def queue(self) -> Queue:
        return queue(self.redis, self.settings.queue_name)

    @cached_property
    def dashboard(self):
        from approver.tyk import Dashboard

        s = self.settings.require_dashboard()
        return Dashboard(s.dashboard_url, s.dashboard_secret, read_timeout=s.dashboard_timeout)

    @cached_property
    def rules(self):
        from approver.rules import LiveRules

        return LiveRules(self.settings.rules_path)


_current: Runtime | None = None


def current() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Runtime(config.from_env())
    return _current


def install(runtime: Runtime | None) -> None:
    """Make `runtime` this process's runtime (tests and the demo), or forget it (None)."""
    global _current
    _current = runtime
