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
    def billing(self):
        """Developers' billing state, as billing events left it."""
        from approver.billing.state import BillingState

        return BillingState(self.redis)

    @cached_property
    def queue(self) -> Queue:
        return queue(self.redis, self.settings.queue_name)

    @cached_property
    def dashboard(self):
        from approver.metrics import observe_dashboard_call
        from approver.tyk import Dashboard

        s = self.settings.require_dashboard()
        return Dashboard(s.dashboard_url, s.dashboard_secret, read_timeout=s.dashboard_timeout,
                         observer=observe_dashboard_call)

    @cached_property
    def portal(self):
        from approver.metrics import observe_dashboard_call
        from approver.portal import Portal

        s = self.settings.require_portal()
        return Portal(s.portal_url, s.portal_token, read_timeout=s.dashboard_timeout,
                      observer=observe_dashboard_call)

    @cached_property
    def sources(self) -> dict:
        """The portals this service decides for, by name."""
        from approver.sources import ClassicSource, PortalSource

        found = {}
        if self.settings.dashboard_url:
            found["classic"] = ClassicSource(self.dashboard)
        if self.settings.portal_url:
            found["portal"] = PortalSource(self.portal)
        return found

    def source(self, ref: str):
        """(the portal's adapter, the native id) for a request reference."""
        from approver.sources import UnknownSource, split

        portal, native_id = split(ref)
        if portal not in self.sources:
            raise UnknownSource(f"no {portal} portal is configured for request {ref}")
        return self.sources[portal], native_id

    @cached_property
    def rules(self):
        from approver.rules import LiveRules

        return LiveRules(self.settings.rules_path)


def publish_health(rt: Runtime) -> dict:
    """Check the Dashboard and the rules now, and record what was seen for the web tier."""
    from approver.errors import ApproverError

    problems = []
    for name, source in rt.sources.items():
        try:
            source.ping()
        except ApproverError as exc:
            problems.append(f"{name}: {exc}")
    dashboard = "; ".join(problems)[:300] or ("ok" if rt.sources else "no portal configured")
    rules = None
    try:
        rules = rt.rules  # loads the rules the first time: a broken file raises here
        revision = rules.current().revision
    except ApproverError as exc:
        revision = ""
        error = str(exc)[:300]
    else:
        error = "; ".join(str(p) for p in (rules.last_error or []))[:300]
    fields = {"dashboard": dashboard, "rules_revision": revision,
              "rules_reload_failures": rules.reload_failures if rules else 0,
              "rules_error": error}
    rt.store.publish_health(**fields)
    return fields


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
