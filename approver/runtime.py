"""The per-process services a worker or command needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import redis
from redis.connection import SSLConnection, parse_url
from redis.credentials import CredentialProvider
from redis.sentinel import MasterNotFoundError, Sentinel
from rq import Queue
from rq.serializers import JSONSerializer

from approver import config
from approver.store import Retention, Store


class _FileCredentials(CredentialProvider):
    """A username and the password in a file, read for each new connection.

    Read then rather than at start, so a rotated secret (a Kubernetes Secret mount is
    updated in place) is used from the next connection on, without a restart; and the
    password is never in the client's connection settings, which RQ copies around.
    """

    def __init__(self, username: str | None, password_file: Path):
        self.username = username
        self.password_file = password_file

    def get_credentials(self):
        password = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        return (self.username, password) if self.username else (password,)


def _credentials(username: str | None, password: str | None,
                 password_file: Path | None) -> dict:
    if password_file:
        return {"credential_provider": _FileCredentials(username, password_file)}
    return {k: v for k, v in (("username", username), ("password", password)) if v}


def _tls(settings: config.Settings) -> dict:
    # Server name checking always on: a certificate must name the host connected to.
    return {"ssl_cert_reqs": "required", "ssl_check_hostname": True,
            "ssl_ca_certs": str(settings.redis_ca_file) if settings.redis_ca_file else None,
            "ssl_certfile": str(settings.redis_cert_file) if settings.redis_cert_file else None,
            "ssl_keyfile": str(settings.redis_key_file) if settings.redis_key_file else None}


def connect(settings: config.Settings | str, *, timeout: float = 5.0) -> redis.Redis:
    """A Redis client built from the settings: every client of the service is made here.

    The URL gives the scheme (rediss:// for TLS), the database and the credentials
    (APPROVER_REDIS_PASSWORD_FILE overrides its password); with APPROVER_REDIS_SENTINELS
    the address of the master is asked of the Sentinels at each new connection, so a
    client follows a failover. Short socket timeouts, so an absent Redis fails fast.
    A bare URL is taken as settings with nothing else set (tests, benchmarks).
    """
    if isinstance(settings, str):
        settings = config.Settings(redis_url=settings)
    options = parse_url(settings.redis_url)
    connection_class = options.pop("connection_class", redis.Connection)
    tls = issubclass(connection_class, SSLConnection)
    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
              **(_tls(settings) if tls else {})}
    auth = _credentials(options.pop("username", None), options.pop("password", None),
                        settings.redis_password_file)
    kwargs = {**options, **common, "health_check_interval": 30, **auth}
    if not settings.redis_sentinels:
        return redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=connection_class, **kwargs))
    for name in ("host", "port", "path"):
        kwargs.pop(name, None)
    sentinel_auth = _credentials(None, settings.redis_sentinel_password,
                                 settings.redis_sentinel_password_file)
    sentinel = Sentinel(list(settings.redis_sentinels),
                        sentinel_kwargs={**common, **sentinel_auth, "ssl": tls})
    # RQ's scheduler rebuilds its connection in a child process from this client's
    # connection class and settings (rq.scheduler.RQScheduler.connection): they are a
    # SentinelManagedConnection's, so the scheduler asks the Sentinels for the master too.
    return sentinel.master_for(settings.redis_sentinel_master, ssl=tls, **kwargs)


def redis_target(settings: config.Settings) -> str:
    """Where the settings point Redis, for messages: no password."""
    if settings.redis_sentinels:
        where = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"Sentinel master {settings.redis_sentinel_master!r} via {where}"
    return config.redact_url(settings.redis_url)


def describe_redis_error(exc: BaseException) -> str:
    """What went wrong reaching Redis, in one line that names the setting to look at."""
    text = " ".join(str(exc).split())
    if "CERTIFICATE_VERIFY_FAILED" in text and "mismatch" in text:
        return ("TLS: the server's certificate does not name the host connected to "
                "(server name checking is on)")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("TLS: the server's certificate is not signed by a CA we trust "
                "(APPROVER_REDIS_CA_FILE)")
    if "SSL" in text or "TLS" in text:
        return f"TLS handshake failed: {text[:200]}"
    if isinstance(exc, redis.AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")):
        return ("authentication refused: check the username and password "
                "(APPROVER_REDIS_URL, APPROVER_REDIS_PASSWORD_FILE)")
    if isinstance(exc, MasterNotFoundError):
        return f"no Sentinel answered with a master: {text[:200]}"
    return f"{type(exc).__name__}: {text[:200]}"


def queue(connection: redis.Redis, name: str) -> Queue:
    """The service's RQ queue; jobs carry plain ids as JSON, never pickles."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


@dataclass
class Runtime:
    """Settings plus the clients built from them, one of each per process."""

    settings: config.Settings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)

    @cached_property
    def store(self) -> Store:
        return Store(self.redis, retention=Retention.of(self.settings))

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
        from approver.ceiling import Ceiling

        rate = self.settings.dashboard_rate
        return Ceiling(self.redis, name, rate) if rate > 0 else None

    def _observer(self, portal: str):
        """An API client's observer: metrics, and calls refused for lack of rights noted
        for every process's health report."""
        from approver.metrics import observe_dashboard_call, route

        def observe(method: str, path: str, outcome: str, seconds: float) -> None:
            observe_dashboard_call(method, path, outcome, seconds)
            if outcome == "403":
                self.store.note_refusal(f"{portal}: {method} {route(path)}")

        return observe

    @cached_property
    def sources(self) -> dict:
        """The portals this service decides for, by name."""
        from approver.sources.classic import ClassicSource
        from approver.sources.portal import PortalSource

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
    # Calls refused for lack of rights lately (writes cannot be tried out by a ping).
    problems += [f"{call} refused (HTTP 403) at {at}: {_right(call)}"
                 for call, at in rt.store.refusals().items()]
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


def _right(call: str) -> str:
    """What a refused call (`"<portal>: <METHOD> <path>"`) needs, said for an operator."""
    from approver.tyk.permissions import grant

    portal, _, rest = call.partition(": ")
    method, _, path = rest.partition(" ")
    needed = grant(method, path) if portal == "classic" else None
    return (f"the Dashboard API user lacks the right {needed}" if needed
            else "the API token lacks a right this call needs")


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
