"""Connecting to Redis: every client of the service is built here, from the settings
(TLS, ACL users, passwords from files, Sentinel)."""

from __future__ import annotations

from pathlib import Path

import redis
from redis.connection import SSLConnection, parse_url
from redis.credentials import CredentialProvider
from redis.sentinel import MasterNotFoundError, Sentinel

from approver import config


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
