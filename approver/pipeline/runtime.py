"""The per-process services a worker or command needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from approver import config, logs
from approver.state import Retention, Store
from approver.state.connection import connect


def queue(connection: redis.Redis, name: str) -> Queue:
    """The service's RQ queue; jobs carry plain ids as JSON, never pickles."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


@dataclass
class Runtime:
    """Settings plus the clients built from them, one of each per process."""

    settings: config.Settings
    # Whether this process chooses a decision's notifications with its own settings (a
    # worker); False in a command, whose environment may lack the mail and webhook
    # settings: a worker then chooses them (notify.tell).
    notify_here: bool = True

    def __post_init__(self) -> None:
        # Every process that may log a secret builds one: web tier, workers, commands.
        logs.redact_values(self.settings.secret_values())

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)

    @cached_property
    def store(self) -> Store:
        return Store(self.redis, retention=Retention.of(self.settings))

    @cached_property
    def billing(self):
        """Developers' billing state, as billing events left it."""
        from approver.state.billing import BillingState

        return BillingState(self.redis)

    @cached_property
    def queue(self) -> Queue:
        return queue(self.redis, self.settings.queue_name)

    @cached_property
    def dashboard(self):
        from approver.tyk import Dashboard

        s = self.settings.require_dashboard()
        return Dashboard(s.dashboard_url, s.dashboard_secret, read_timeout=s.dashboard_timeout,
                         observer=self._observer("classic"),
                         before_call=self.ceiling("dashboard"))

    @cached_property
    def portal(self):
        from approver.portal import Portal

        s = self.settings.require_portal()
        return Portal(s.portal_url, s.portal_token, read_timeout=s.dashboard_timeout,
                      observer=self._observer("portal"), before_call=self.ceiling("portal"))

    def ceiling(self, name: str):
        """The shared ceiling on `name`'s API calls per second (None when it is off)."""
        from approver.state.ceiling import Ceiling

        rate = self.settings.dashboard_rate
        return Ceiling(self.redis, name, rate) if rate > 0 else None

    def _observer(self, portal: str):
        """An API client's observer: metrics, and calls refused for lack of rights noted
        for every process's health report."""
        from approver.pipeline.metrics import observe_dashboard_call, route

        def observe(method: str, path: str, outcome: str, seconds: float) -> None:
            observe_dashboard_call(method, path, outcome, seconds)
            if outcome == "403":
                self.store.note_refusal(f"{portal}: {method} {route(path)}")

        return observe

    @cached_property
    def sources(self) -> dict:
        """The portals this service decides for, by name."""
        from approver.pipeline.sources.classic import ClassicSource
        from approver.pipeline.sources.portal import PortalSource

        found = {}
        if self.settings.dashboard_url:
            found["classic"] = ClassicSource(self.dashboard)
        if self.settings.portal_url:
            found["portal"] = PortalSource(self.portal)
        return found

    def source(self, ref: str):
        """(the portal's adapter, the native id) for a request reference."""
        from approver.pipeline.sources import UnknownSource, split

        portal, native_id = split(ref)
        if portal not in self.sources:
            settings = SOURCE_SETTINGS.get(portal, "its settings")
            raise UnknownSource(f"no {portal} portal is configured for request {ref}: "
                                f"set {settings}")
        return self.sources[portal], native_id

    @cached_property
    def rules(self):
        from approver.rules import LiveRules

        return LiveRules(self.settings.rules_path)


# What configures each portal, for the error that says one is missing.
SOURCE_SETTINGS = {"classic": "APPROVER_DASHBOARD_URL and APPROVER_DASHBOARD_SECRET",
                   "portal": "APPROVER_PORTAL_URL and APPROVER_PORTAL_TOKEN"}

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
