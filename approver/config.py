"""Settings, from the environment: the only reader of os.environ.

Over 300 lines: every setting is read and checked here, one place for the README's settings
table to be compared with (tests/test_readme.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from approver.errors import ConfigError
from approver.signing import whsec_key

MODES = ("enforce", "shadow")
MIN_TOKEN_LENGTH = 16
# Webhook tokens ride in URL paths: only the URL-safe base64 alphabet, so that no spelling of
# the path (an encoded or doubled "/", a "+") can change what is logged or routed.
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
# The placeholders shipped in deploy/ (compose defaults, the Kubernetes Secret, env.example)
# and their kind: a service started with one runs with a secret anyone can read.
_PLACEHOLDER = re.compile(r"(?i)change[-_. ]?me|replace[-_. ]?me")
MIN_SECRET_KEY_LENGTH = 32
NOTIFY_KINDS = ("review", "wait", "approve", "deny")


@dataclass(frozen=True)
class Validator:
    """An outside system a rule's step may hand the decision to: where it is asked, the
    Standard Webhooks secret both ways, how long a call may take."""

    name: str
    url: str
    secret: str = field(repr=False)
    timeout: float = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told, validated."""

    dashboard_url: str | None = None
    dashboard_secret: str | None = field(default=None, repr=False)
    portal_url: str | None = None
    portal_token: str | None = field(default=None, repr=False)
    portal_webhook_tokens: tuple[str, ...] = field(default=(), repr=False)
    redis_url: str = "redis://localhost:6379/0"
    webhook_tokens: tuple[str, ...] = field(default=(), repr=False)
    billing_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_secrets: tuple[str, ...] = field(default=(), repr=False)
    rules_path: Path = Path("rules")
    mode: str = "enforce"
    reconcile_interval: int = 60
    public_url: str | None = None
    checkout_url: str | None = None
    queue_name: str = "approver"
    body_limit: int = 64 * 1024
    retry_delays: tuple[int, ...] = (1, 5, 15, 60, 300)
    dashboard_timeout: float = 10.0
    secret_key: bytes = field(default=b"", repr=False)
    paid_policy_tags: tuple[str, ...] = ("paid",)
    past_due_grace: int | None = None
    # A `canceled` revokes only once it has been the newest state this long (a plan switch
    # sends `canceled` then `active` within seconds).
    billing_cancel_settle: int = 15
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_secret: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    notify_on: tuple[str, ...] = NOTIFY_KINDS
    # Redis beyond its URL: a password file, TLS files, Sentinel (approver/state/connection.py).
    redis_password_file: Path | None = None
    redis_ca_file: Path | None = None
    redis_cert_file: Path | None = None
    redis_key_file: Path | None = None
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    redis_sentinel_password: str | None = field(default=None, repr=False)
    redis_sentinel_password_file: Path | None = None
    # Retention (approver/state/retention.py): what bounds Redis's size.
    log_max_entries: int = 1_000_000
    log_max_age: int | None = None
    record_max_entries: int = 100_000
    record_max_age: int | None = 90 * 86400
    # The ceiling on Dashboard/portal API calls per second, shared by every worker.
    dashboard_rate: float = 100.0
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    handoff_limit: int = 30
    internal_bind: str | None = None
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    mail_on: tuple[str, ...] = ("deny",)
    mail_admins: tuple[str, ...] = ()
    mail_templates: Path | None = None
    console_idle_timeout: int = 1800
    console_session_lifetime: int = 12 * 3600
    console_user_header: str | None = None
    console_groups_header: str | None = None
    admins_group: str | None = None
    validators: tuple[Validator, ...] = ()
    console_trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_allowed_users: tuple[str, ...] = ()
    oidc_allowed_groups: tuple[str, ...] = ()
    oidc_groups_claim: str = "groups"
    # Signals (approver/signals/): DNS servers as (ip, port), none for the system's; one
    # RDAP base URL for every domain, none for the IANA bootstrap; the bound on one
    # decision's lookups together; where `approver data update` loads newer lists from.
    dns_servers: tuple[tuple[str, int], ...] = ()
    rdap_url: str | None = None
    signals_timeout: float = 2.0
    # A private list's URL may carry a token: kept out of repr, redacted from logs.
    disposable_list_url: str | None = field(default=None, repr=False)
    free_mail_list_url: str | None = field(default=None, repr=False)
    # Deciding from a mail's action links (pipeline/actions.py).
    action_link_ttl: int = 86400
    action_link_sign_in: bool = False
    # The Slack app that posts requests waiting for people, with buttons (approver/slack/).
    slack_api_url: str = "https://slack.com/api"
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_channel: str | None = None
    slack_users: tuple[tuple[str, str], ...] = ()

    @property
    def internal_port(self) -> int | None:
        """The port of the internal listener (/metrics, detailed /readyz), if there is one."""
        return int(self.internal_bind.rpartition(":")[2]) if self.internal_bind else None

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"

    def require_dashboard(self) -> Settings:
        """Return self, or fail naming the Dashboard variable that is missing."""
        for name, value in (
            ("APPROVER_DASHBOARD_URL", self.dashboard_url),
            ("APPROVER_DASHBOARD_SECRET", self.dashboard_secret),
        ):
            if not value:
                raise ConfigError(f"{name} is required (the Tyk Dashboard to decide against)")
        return self

    def require_portal(self) -> Settings:
        """Return self, or fail naming the new-portal variable that is missing."""
        for name, value in (
            ("APPROVER_PORTAL_URL", self.portal_url),
            ("APPROVER_PORTAL_TOKEN", self.portal_token),
        ):
            if not value:
                raise ConfigError(f"{name} is required (the Tyk Developer Portal's admin API)")
        return self

    def require_a_portal(self) -> Settings:
        """Return self if the classic Dashboard, the new portal or both are configured."""
        if self.dashboard_url or self.dashboard_secret:
            self.require_dashboard()
        if self.portal_url or self.portal_token:
            self.require_portal()
        if not (self.dashboard_url or self.portal_url):
            raise ConfigError(
                "configure a portal: APPROVER_DASHBOARD_URL and APPROVER_DASHBOARD_SECRET "
                "(classic portal), APPROVER_PORTAL_URL and APPROVER_PORTAL_TOKEN (Tyk "
                "Developer Portal), or both"
            )
        return self

    def require_secret_key(self) -> Settings:
        """Return self, or fail: the hand-off's status links need a key of their own."""
        if not self.secret_key:
            raise ConfigError(
                f"APPROVER_SECRET_KEY is required for the web tier ({MIN_SECRET_KEY_LENGTH}+ "
                "characters; make one with python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return self

    def require_webhook_tokens(self) -> Settings:
        """Return self, or fail: the web tier accepts no webhook without a token."""
        if not self.webhook_tokens and not self.portal_webhook_tokens:
            raise ConfigError(
                "APPROVER_WEBHOOK_TOKENS is required for the web tier "
                f"(comma-separated, each at least {MIN_TOKEN_LENGTH} characters)"
            )
        return self

    def secret_values(self) -> tuple[str, ...]:
        """Every secret set (the fields kept out of repr), for redaction from logs."""
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr and value:
                items = value if isinstance(value, tuple) else (value,)
                found += [v.decode("latin-1") if isinstance(v, bytes) else v for v in items]
        return tuple(found)

    def with_(self, **changes) -> Settings:
        """A copy with some settings changed (the demo and the tests use it)."""
        return replace(self, **changes)


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, "
                          f"got {redact_url(value)!r}")
    return value.rstrip("/")


def redact_url(url: str) -> str:
    """The URL with any password in it replaced by `***`, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    return parts._replace(netloc=f"{user}***@{parts.netloc.rpartition('@')[2]}").geturl()


def _secrets(name: str, value: str | None, prefix: str = "",
             url_safe: bool = False) -> tuple[str, ...]:
    items = tuple(s.strip() for s in (value or "").split(",") if s.strip())
    for i, item in enumerate(items, 1):
        if len(item) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{name}: entry {i} is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        if prefix and not item.startswith(prefix):
            raise ConfigError(f"{name}: entry {i} must start with {prefix!r}")
        if url_safe and not _URL_SAFE.fullmatch(item):
            raise ConfigError(
                f"{name}: entry {i} may hold only letters, digits, '-' and '_' (make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
    return items


def _int(name: str, value: str | None, default: int, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def _float(name: str, value: str | None, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {number}")
    return number


def _rate(value: str | None) -> float:
    if value is None or value.strip() == "":
        return Settings.dashboard_rate
    if value.strip() in ("0", "off"):
        return 0.0
    return _float("APPROVER_DASHBOARD_RATE", value, Settings.dashboard_rate)


def _delays(name: str, value: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        return default
    try:
        delays = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated whole seconds, got {value!r}") from None
    if not delays or any(d < 0 for d in delays):
        raise ConfigError(f"{name} must be comma-separated whole seconds >= 0")
    return delays


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(name: str, value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip().lower()
    try:
        seconds = (int(text[:-1]) * _UNITS[text[-1]] if text[-1:] in _UNITS else int(text))
    except ValueError:
        seconds = -1
    if seconds < 0:  # a negative age would trim everything younger than now
        raise ConfigError(f"{name} must be a duration like 90s, 30m, 72h or 3d, "
                          f"got {value!r}")
    return seconds


def _file(name: str, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{name}: no readable file at {value}")
    return path


def _sentinels(value: str | None) -> tuple[tuple[str, int], ...]:
    found = []
    for item in (v.strip() for v in (value or "").split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        try:
            number = int(port)
        except ValueError:
            number = 0
        if not host or not 0 < number < 65536:
            raise ConfigError(f"APPROVER_REDIS_SENTINELS: {item!r} is not host:port")
        found.append((host.strip("[]"), number))
    return tuple(found)


def _dns_servers(value: str | None) -> tuple[tuple[str, int], ...]:
    found = []
    for item in (v.strip() for v in (value or "").split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ("53" if not rest else "x")
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            number = 0
        if not 0 < number < 65536:
            raise ConfigError(f"APPROVER_DNS_SERVERS: {item!r} is not an IP address[:port]")
        found.append((host, number))
    return tuple(found)


def _list_source(name: str, value: str | None) -> str | None:
    """An http(s) URL or a file path to load a domain list from (`approver data update`)."""
    if not value or not value.strip():
        return None
    if "://" in value:
        return _url(name, value.strip(), ("https", "http"))
    return value.strip()


def _signals(env: Mapping[str, str]) -> dict:
    timeout = _float("APPROVER_SIGNALS_TIMEOUT", env.get("APPROVER_SIGNALS_TIMEOUT"), 2.0)
    if not 0 < timeout <= 60:
        raise ConfigError(f"APPROVER_SIGNALS_TIMEOUT must be over 0 and at most 60, "
                          f"got {timeout}")
    return {
        "dns_servers": _dns_servers(env.get("APPROVER_DNS_SERVERS")),
        "rdap_url": _url("APPROVER_RDAP_URL", env.get("APPROVER_RDAP_URL"), ("https", "http")),
        "signals_timeout": timeout,
        "disposable_list_url": _list_source("APPROVER_DISPOSABLE_LIST_URL",
                                            env.get("APPROVER_DISPOSABLE_LIST_URL")),
        "free_mail_list_url": _list_source("APPROVER_FREE_MAIL_LIST_URL",
                                           env.get("APPROVER_FREE_MAIL_LIST_URL")),
    }


def _redis(env: Mapping[str, str]) -> dict:
    """The Redis connection settings beyond the URL, checked together."""
    sentinels = _sentinels(env.get("APPROVER_REDIS_SENTINELS"))
    master = (env.get("APPROVER_REDIS_SENTINEL_MASTER") or "").strip() or None
    if sentinels and not master:
        raise ConfigError("APPROVER_REDIS_SENTINEL_MASTER is required with "
                          "APPROVER_REDIS_SENTINELS (the master's name in sentinel.conf)")
    found = {
        "redis_sentinels": sentinels,
        "redis_sentinel_master": master,
        "redis_sentinel_password": env.get("APPROVER_REDIS_SENTINEL_PASSWORD") or None,
        "redis_password_file": _file("APPROVER_REDIS_PASSWORD_FILE",
                                     env.get("APPROVER_REDIS_PASSWORD_FILE")),
        "redis_ca_file": _file("APPROVER_REDIS_CA_FILE", env.get("APPROVER_REDIS_CA_FILE")),
        "redis_cert_file": _file("APPROVER_REDIS_CERT_FILE",
                                 env.get("APPROVER_REDIS_CERT_FILE")),
        "redis_key_file": _file("APPROVER_REDIS_KEY_FILE", env.get("APPROVER_REDIS_KEY_FILE")),
        "redis_sentinel_password_file": _file("APPROVER_REDIS_SENTINEL_PASSWORD_FILE",
                                              env.get("APPROVER_REDIS_SENTINEL_PASSWORD_FILE")),
    }
    if bool(found["redis_cert_file"]) != bool(found["redis_key_file"]):
        raise ConfigError("APPROVER_REDIS_CERT_FILE and APPROVER_REDIS_KEY_FILE go together "
                          "(the client certificate and its private key)")
    return found


def _age(name: str, value: str | None, default: int | None) -> int | None:
    """A retention age: a duration, `0` for any age, the default when unset."""
    if value is None or value.strip() == "":
        return default
    return _duration(name, value) or None


def _retention(env: Mapping[str, str]) -> dict:
    """How much of the decision log and of the per-request records Redis keeps."""
    return {
        "log_max_entries": _int("APPROVER_LOG_MAX_ENTRIES", env.get("APPROVER_LOG_MAX_ENTRIES"),
                                Settings.log_max_entries, 1000),
        "log_max_age": _age("APPROVER_LOG_MAX_AGE", env.get("APPROVER_LOG_MAX_AGE"),
                            Settings.log_max_age),
        "record_max_entries": _int(
            "APPROVER_RECORD_MAX_ENTRIES", env.get("APPROVER_RECORD_MAX_ENTRIES"),
            Settings.record_max_entries, 1000),
        "record_max_age": _age("APPROVER_RECORD_MAX_AGE", env.get("APPROVER_RECORD_MAX_AGE"),
                               Settings.record_max_age),
    }


def _secret_key(value: str | None) -> bytes:
    # The hand-off's status links are signed with this key, a secret of its own: one
    # derived from a webhook token made a leaked token forge links too.
    if not value:
        return b""
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"APPROVER_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters")
    return value.encode()


def _refuse_placeholders(env: Mapping[str, str]) -> None:
    for name in sorted(env):
        if (name.startswith("APPROVER_") or name == "REDIS_URL") and _PLACEHOLDER.search(
                env[name] or ""):
            raise ConfigError(f"{name} holds a placeholder from the examples: set a value "
                              "of your own")


def _networks(name: str, value: str | None) -> tuple:
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False)
                     for v in (value or "").split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated addresses or networks: {exc}") \
            from None


def _bind(name: str, value: str | None) -> str | None:
    if not value:
        return None
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be host:port (e.g. 0.0.0.0:9000), got {value!r}")
    return value.strip()


def _url_list(name: str, value: str | None) -> tuple[str, ...]:
    return tuple(_url(name, u.strip(), ("http", "https"))
                 for u in (value or "").split(",") if u.strip())


def _notify_secret(value: str | None, urls: tuple[str, ...]) -> str | None:
    secret = (value or "").strip() or None
    if secret:
        _secrets("APPROVER_NOTIFY_SECRET", secret, prefix="whsec_")
        if not whsec_key(secret):
            raise ConfigError("APPROVER_NOTIFY_SECRET must be whsec_ followed by base64")
    elif urls:
        raise ConfigError("APPROVER_NOTIFY_SECRET (whsec_...) is required with "
                          "APPROVER_NOTIFY_URLS: events are always signed")
    return secret


def _notify_on(value: str | None) -> tuple[str, ...]:
    if value is None or not value.strip():
        return NOTIFY_KINDS
    kinds = tuple(k.strip().lower() for k in value.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(NOTIFY_KINDS))
    if unknown:
        raise ConfigError(f"APPROVER_NOTIFY_ON: unknown {', '.join(unknown)} "
                          f"(choose from {', '.join(NOTIFY_KINDS)})")
    return kinds


MAIL_KINDS = ("approve", "deny", "review")
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _smtp_url(value: str | None) -> str | None:
    url = _url("APPROVER_SMTP_URL", value, SMTP_SCHEMES)
    if url:
        parts = urlsplit(url)
        # A password sent in the clear to another machine: refuse, ask for TLS.
        if parts.scheme == "smtp" and parts.password and parts.hostname not in _LOOPBACK:
            raise ConfigError("APPROVER_SMTP_URL: credentials need smtp+starttls:// or "
                              "smtps:// (plain smtp:// only to this machine)")
    return url


def _mail(env: Mapping[str, str]) -> dict:
    smtp_url = _smtp_url(env.get("APPROVER_SMTP_URL"))
    sender = (env.get("APPROVER_MAIL_FROM") or "").strip() or None
    if smtp_url and not sender:
        raise ConfigError("APPROVER_MAIL_FROM is required with APPROVER_SMTP_URL")
    kinds = _list(env.get("APPROVER_MAIL_ON")) if env.get("APPROVER_MAIL_ON") is not None \
        else ("deny",)
    unknown = sorted(set(kinds) - set(MAIL_KINDS))
    if unknown:
        raise ConfigError(f"APPROVER_MAIL_ON: unknown {', '.join(unknown)} "
                          f"(choose from {', '.join(MAIL_KINDS)})")
    folder = env.get("APPROVER_MAIL_TEMPLATES")
    if folder and not Path(folder).is_dir():
        raise ConfigError(f"APPROVER_MAIL_TEMPLATES: {folder} is not a folder")
    return dict(smtp_url=smtp_url, mail_from=sender, mail_on=kinds,
                mail_admins=_list(env.get("APPROVER_MAIL_ADMINS")),
                mail_templates=Path(folder) if folder else None)


def _console(env: Mapping[str, str]) -> dict:
    header = (env.get("APPROVER_CONSOLE_USER_HEADER") or "").strip() or None
    proxies = _networks("APPROVER_CONSOLE_TRUSTED_PROXIES",
                        env.get("APPROVER_CONSOLE_TRUSTED_PROXIES"))
    if bool(header) != bool(proxies):
        raise ConfigError("APPROVER_CONSOLE_USER_HEADER and APPROVER_CONSOLE_TRUSTED_PROXIES "
                          "go together: the header is believed only from those addresses")
    idle = _duration("APPROVER_CONSOLE_IDLE_TIMEOUT", env.get("APPROVER_CONSOLE_IDLE_TIMEOUT"))
    if idle is not None and idle < 1:
        raise ConfigError("APPROVER_CONSOLE_IDLE_TIMEOUT must be at least 1s")
    lifetime = _duration("APPROVER_CONSOLE_SESSION_LIFETIME",
                         env.get("APPROVER_CONSOLE_SESSION_LIFETIME"))
    if lifetime is not None and lifetime < 1:
        raise ConfigError("APPROVER_CONSOLE_SESSION_LIFETIME must be at least 1s")
    issuer = env.get("APPROVER_OIDC_ISSUER")
    oidc = dict(oidc_issuer=None)
    if issuer:
        oidc_url = _url("APPROVER_OIDC_ISSUER", issuer, ("https", "http"))
        if urlsplit(oidc_url).scheme == "http" and urlsplit(oidc_url).hostname not in _LOOPBACK:
            raise ConfigError("APPROVER_OIDC_ISSUER must be https (http only on this machine)")
        oidc = dict(
            oidc_issuer=oidc_url,
            oidc_client_id=(env.get("APPROVER_OIDC_CLIENT_ID") or "").strip() or None,
            oidc_client_secret=(env.get("APPROVER_OIDC_CLIENT_SECRET") or "").strip() or None,
            oidc_allowed_users=tuple(u.lower() for u in
                                     _list(env.get("APPROVER_OIDC_ALLOWED_USERS"))),
            oidc_allowed_groups=_list(env.get("APPROVER_OIDC_ALLOWED_GROUPS")),
            oidc_groups_claim=(env.get("APPROVER_OIDC_GROUPS_CLAIM") or "groups").strip(),
        )
        if not (oidc["oidc_client_id"] and oidc["oidc_client_secret"]):
            raise ConfigError("APPROVER_OIDC_CLIENT_ID and APPROVER_OIDC_CLIENT_SECRET are "
                              "required with APPROVER_OIDC_ISSUER")
        if not (oidc["oidc_allowed_users"] or oidc["oidc_allowed_groups"]):
            raise ConfigError("APPROVER_OIDC_ALLOWED_USERS or APPROVER_OIDC_ALLOWED_GROUPS is "
                              "required with APPROVER_OIDC_ISSUER (who may use the console)")
        if not (env.get("APPROVER_PUBLIC_URL") or "").strip():
            raise ConfigError("APPROVER_PUBLIC_URL is required with APPROVER_OIDC_ISSUER (the "
                              "sign-on callback address, never taken from a request's Host)")
    groups_header = (env.get("APPROVER_CONSOLE_GROUPS_HEADER") or "").strip() or None
    if groups_header and not header:
        raise ConfigError("APPROVER_CONSOLE_GROUPS_HEADER needs APPROVER_CONSOLE_USER_HEADER: "
                          "the proxy that names the user names their groups")
    return dict(console_user_header=header, console_trusted_proxies=proxies,
                console_groups_header=groups_header,
                admins_group=(env.get("APPROVER_ADMINS_GROUP") or "").strip() or None,
                console_idle_timeout=idle or Settings.console_idle_timeout,
                console_session_lifetime=lifetime or Settings.console_session_lifetime, **oidc)


def _validators(env: Mapping[str, str]) -> tuple[Validator, ...]:
    """`APPROVER_VALIDATORS` (name=URL, ...) with `APPROVER_VALIDATOR_SECRETS` (name=whsec_...,
    one per validator) and `APPROVER_VALIDATOR_TIMEOUT`."""
    def pairs(name: str) -> dict[str, str]:
        found = {}
        for item in _list(env.get(name)):
            key, eq, value = item.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", key.strip()):
                raise ConfigError(f"{name}: write name=value entries, comma-separated "
                                  f"(entry {len(found) + 1} is not one)")
            found[key.strip()] = value.strip()
        return found

    urls, secrets = pairs("APPROVER_VALIDATORS"), pairs("APPROVER_VALIDATOR_SECRETS")
    timeout = _float("APPROVER_VALIDATOR_TIMEOUT", env.get("APPROVER_VALIDATOR_TIMEOUT"), 10.0)
    if set(secrets) - set(urls):
        raise ConfigError("APPROVER_VALIDATOR_SECRETS names a validator APPROVER_VALIDATORS "
                          f"does not: {', '.join(sorted(set(secrets) - set(urls)))}")
    found = []
    for name, url in urls.items():
        secret = secrets.get(name, "")
        if not secret.startswith("whsec_") or not whsec_key(secret) or \
                len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"APPROVER_VALIDATOR_SECRETS: validator {name} needs a whsec_ "
                              "secret (base64 after the prefix)")
        found.append(Validator(name, _url("APPROVER_VALIDATORS", url, ("https", "http")),
                               secret, timeout))
    return tuple(found)


def _flag(name: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return text in ("1", "true", "yes")


def _actions(env: Mapping[str, str]) -> dict:
    """Action links in mail: how long they live, whether they need a console sign-in."""
    ttl = _duration("APPROVER_ACTION_LINK_TTL", env.get("APPROVER_ACTION_LINK_TTL"))
    if ttl is not None and not 60 <= ttl <= 30 * 86400:
        raise ConfigError("APPROVER_ACTION_LINK_TTL must be between 1m and 30d")
    return dict(action_link_ttl=ttl or Settings.action_link_ttl,
                action_link_sign_in=_flag("APPROVER_ACTION_LINK_SIGN_IN",
                                          env.get("APPROVER_ACTION_LINK_SIGN_IN")))


_SLACK_ID = re.compile(r"[A-Z0-9]{2,32}")
_PEOPLE = ("local", "oidc", "proxy", "email")


def _slack(env: Mapping[str, str]) -> dict:
    """The Slack app: its API, bot token, signing secret, reviewers' channel, user mapping."""
    token = (env.get("APPROVER_SLACK_BOT_TOKEN") or "").strip() or None
    secret = (env.get("APPROVER_SLACK_SIGNING_SECRET") or "").strip() or None
    channel = (env.get("APPROVER_SLACK_CHANNEL") or "").strip() or None
    given = [n for n, v in (("APPROVER_SLACK_BOT_TOKEN", token),
                            ("APPROVER_SLACK_SIGNING_SECRET", secret),
                            ("APPROVER_SLACK_CHANNEL", channel)) if v]
    if given and len(given) < 3:
        raise ConfigError("APPROVER_SLACK_BOT_TOKEN, APPROVER_SLACK_SIGNING_SECRET and "
                          "APPROVER_SLACK_CHANNEL go together (set: " + ", ".join(given) + ")")
    if token and not token.startswith("xoxb-"):
        raise ConfigError("APPROVER_SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
    if channel and not _SLACK_ID.fullmatch(channel):
        raise ConfigError("APPROVER_SLACK_CHANNEL must be a channel id (C0123ABCD), "
                          f"got {channel!r}")
    users = []
    for item in _list(env.get("APPROVER_SLACK_USERS")):
        user, _, person = item.partition("=")
        way, _, name = person.strip().partition(":")
        if not _SLACK_ID.fullmatch(user.strip()) or way not in _PEOPLE or not name:
            raise ConfigError(f"APPROVER_SLACK_USERS: {item!r} is not SLACK_USER_ID=way:name "
                              "(U0123ABCD=local:alice, U0456EFGH=oidc:bob@example.com)")
        users.append((user.strip(), person.strip()))
    api = _url("APPROVER_SLACK_API_URL", env.get("APPROVER_SLACK_API_URL"), ("https", "http"))
    return dict(slack_api_url=api or Settings.slack_api_url, slack_bot_token=token,
                slack_signing_secret=secret, slack_channel=channel, slack_users=tuple(users))


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    _refuse_placeholders(env)
    mode = env.get("APPROVER_MODE", "enforce").strip().lower() or "enforce"
    if mode not in MODES:
        raise ConfigError(f"APPROVER_MODE must be one of {', '.join(MODES)}, got {mode!r}")
    redis_url = env.get("APPROVER_REDIS_URL") or env.get("REDIS_URL") or Settings.redis_url
    redis_name = "APPROVER_REDIS_URL" if env.get("APPROVER_REDIS_URL") else "REDIS_URL"
    _url(redis_name, redis_url, ("redis", "rediss", "unix"))
    secret = env.get("APPROVER_DASHBOARD_SECRET") or None
    cancel_settle = _duration("APPROVER_BILLING_CANCEL_SETTLE",
                              env.get("APPROVER_BILLING_CANCEL_SETTLE"))
    tokens = _secrets("APPROVER_WEBHOOK_TOKENS", env.get("APPROVER_WEBHOOK_TOKENS"),
                      url_safe=True)
    notify_urls = _url_list("APPROVER_NOTIFY_URLS", env.get("APPROVER_NOTIFY_URLS"))
    return Settings(
        **_redis(env),
        **_retention(env),
        dashboard_rate=_rate(env.get("APPROVER_DASHBOARD_RATE")),
        **_mail(env),
        **_console(env),
        validators=_validators(env),
        **_signals(env),
        notify_urls=notify_urls,
        notify_secret=_notify_secret(env.get("APPROVER_NOTIFY_SECRET"), notify_urls),
        slack_webhook_url=_url("APPROVER_SLACK_WEBHOOK_URL",
                               env.get("APPROVER_SLACK_WEBHOOK_URL"), ("https", "http")),
        notify_on=_notify_on(env.get("APPROVER_NOTIFY_ON")),
        dashboard_url=_url(
            "APPROVER_DASHBOARD_URL", env.get("APPROVER_DASHBOARD_URL"), ("http", "https")
        ),
        dashboard_secret=secret.strip() if secret else None,
        portal_url=_url("APPROVER_PORTAL_URL", env.get("APPROVER_PORTAL_URL"), ("http", "https")),
        portal_token=(env.get("APPROVER_PORTAL_TOKEN") or "").strip() or None,
        portal_webhook_tokens=_secrets(
            "APPROVER_PORTAL_WEBHOOK_TOKENS", env.get("APPROVER_PORTAL_WEBHOOK_TOKENS"),
            url_safe=True,
        ),
        redis_url=redis_url,
        webhook_tokens=tokens,
        secret_key=_secret_key(env.get("APPROVER_SECRET_KEY")),
        paid_policy_tags=tuple(
            t.strip() for t in env.get("APPROVER_PAID_POLICY_TAGS", "paid").split(",") if t.strip()
        ),
        past_due_grace=_duration("APPROVER_PAST_DUE_GRACE", env.get("APPROVER_PAST_DUE_GRACE")),
        billing_cancel_settle=15 if cancel_settle is None else cancel_settle,
        billing_secrets=_secrets(
            "APPROVER_BILLING_SECRETS", env.get("APPROVER_BILLING_SECRETS"), prefix="whsec_"
        ),
        stripe_secrets=_secrets(
            "APPROVER_STRIPE_SECRETS", env.get("APPROVER_STRIPE_SECRETS"), prefix="whsec_"
        ),
        rules_path=Path(env.get("APPROVER_RULES") or "rules"),
        mode=mode,
        reconcile_interval=_int(
            "APPROVER_RECONCILE_INTERVAL", env.get("APPROVER_RECONCILE_INTERVAL"), 60, 1
        ),
        public_url=_url("APPROVER_PUBLIC_URL", env.get("APPROVER_PUBLIC_URL"), ("http", "https")),
        checkout_url=_url(
            "APPROVER_CHECKOUT_URL", env.get("APPROVER_CHECKOUT_URL"), ("http", "https")
        ),
        queue_name=env.get("APPROVER_QUEUE") or "approver",
        body_limit=_int("APPROVER_BODY_LIMIT", env.get("APPROVER_BODY_LIMIT"), 64 * 1024, 1024),
        retry_delays=_delays(
            "APPROVER_RETRY_DELAYS", env.get("APPROVER_RETRY_DELAYS"), Settings.retry_delays
        ),
        dashboard_timeout=_float(
            "APPROVER_DASHBOARD_TIMEOUT", env.get("APPROVER_DASHBOARD_TIMEOUT"), 10.0
        ),
        trusted_proxies=_networks("APPROVER_TRUSTED_PROXIES", env.get("APPROVER_TRUSTED_PROXIES")),
        handoff_limit=_int("APPROVER_HANDOFF_LIMIT", env.get("APPROVER_HANDOFF_LIMIT"), 30, 1),
        internal_bind=_bind("APPROVER_INTERNAL_BIND", env.get("APPROVER_INTERNAL_BIND")),
        **_actions(env),
        **_slack(env),
    )
