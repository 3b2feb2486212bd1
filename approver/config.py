"""Settings, from the environment: the only reader of os.environ."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from approver.errors import ConfigError

MODES = ("enforce", "shadow")
MIN_TOKEN_LENGTH = 16
NOTIFY_KINDS = ("review", "wait", "approve", "deny")


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
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_secret: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    notify_on: tuple[str, ...] = NOTIFY_KINDS
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    mail_on: tuple[str, ...] = ("deny",)
    mail_admins: tuple[str, ...] = ()
    mail_templates: Path | None = None
    console_idle_timeout: int = 1800
    console_user_header: str | None = None
    console_trusted_proxies: tuple[str, ...] = ()
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_allowed_users: tuple[str, ...] = ()
    oidc_allowed_groups: tuple[str, ...] = ()
    oidc_groups_claim: str = "groups"

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

    def require_webhook_tokens(self) -> Settings:
        """Return self, or fail: the web tier accepts no webhook without a token."""
        if not self.webhook_tokens and not self.portal_webhook_tokens:
            raise ConfigError(
                "APPROVER_WEBHOOK_TOKENS is required for the web tier "
                f"(comma-separated, each at least {MIN_TOKEN_LENGTH} characters)"
            )
        return self

    def with_(self, **changes) -> Settings:
        """A copy with some settings changed (the demo and the tests use it)."""
        return replace(self, **changes)


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _secrets(name: str, value: str | None, prefix: str = "") -> tuple[str, ...]:
    items = tuple(s.strip() for s in (value or "").split(",") if s.strip())
    for i, item in enumerate(items, 1):
        if len(item) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{name}: entry {i} is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        if prefix and not item.startswith(prefix):
            raise ConfigError(f"{name}: entry {i} must start with {prefix!r}")
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
        if text[-1:] in _UNITS:
            return int(text[:-1]) * _UNITS[text[-1]]
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a duration like 90s, 30m, 72h or 3d, "
                          f"got {value!r}") from None


def _secret_key(value: str | None, tokens: tuple[str, ...]) -> bytes:
    # Hand-off state and status links are signed with this key. Without one set, it is
    # derived from the first webhook token, so rotating that token expires old links.
    if value:
        if len(value) < 32:
            raise ConfigError("APPROVER_SECRET_KEY must be at least 32 characters")
        return value.encode()
    if tokens:
        return hashlib.sha256(b"tyk-approver signing key\0" + tokens[0].encode()).digest()
    return b""


def _url_list(name: str, value: str | None) -> tuple[str, ...]:
    return tuple(_url(name, u.strip(), ("http", "https"))
                 for u in (value or "").split(",") if u.strip())


def _notify_secret(value: str | None, urls: tuple[str, ...]) -> str | None:
    secret = (value or "").strip() or None
    if secret:
        _secrets("APPROVER_NOTIFY_SECRET", secret, prefix="whsec_")
        try:
            key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        except (binascii.Error, ValueError):
            key = b""
        if not key:
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
    proxies = _list(env.get("APPROVER_CONSOLE_TRUSTED_PROXIES"))
    if bool(header) != bool(proxies):
        raise ConfigError("APPROVER_CONSOLE_USER_HEADER and APPROVER_CONSOLE_TRUSTED_PROXIES "
                          "go together: the header is believed only from those addresses")
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"APPROVER_CONSOLE_TRUSTED_PROXIES: {proxy!r} is not an "
                              "address or a network") from None
    idle = _duration("APPROVER_CONSOLE_IDLE_TIMEOUT", env.get("APPROVER_CONSOLE_IDLE_TIMEOUT"))
    if idle is not None and idle < 1:
        raise ConfigError("APPROVER_CONSOLE_IDLE_TIMEOUT must be at least 1s")
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
    return dict(console_user_header=header, console_trusted_proxies=proxies,
                console_idle_timeout=idle or Settings.console_idle_timeout, **oidc)


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    mode = env.get("APPROVER_MODE", "enforce").strip().lower() or "enforce"
    if mode not in MODES:
        raise ConfigError(f"APPROVER_MODE must be one of {', '.join(MODES)}, got {mode!r}")
    redis_url = env.get("APPROVER_REDIS_URL") or env.get("REDIS_URL") or Settings.redis_url
    redis_name = "APPROVER_REDIS_URL" if env.get("APPROVER_REDIS_URL") else "REDIS_URL"
    _url(redis_name, redis_url, ("redis", "rediss", "unix"))
    secret = env.get("APPROVER_DASHBOARD_SECRET") or None
    tokens = _secrets("APPROVER_WEBHOOK_TOKENS", env.get("APPROVER_WEBHOOK_TOKENS"))
    notify_urls = _url_list("APPROVER_NOTIFY_URLS", env.get("APPROVER_NOTIFY_URLS"))
    return Settings(
        **_mail(env),
        **_console(env),
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
            "APPROVER_PORTAL_WEBHOOK_TOKENS", env.get("APPROVER_PORTAL_WEBHOOK_TOKENS")
        ),
        redis_url=redis_url,
        webhook_tokens=tokens,
        secret_key=_secret_key(env.get("APPROVER_SECRET_KEY"), tokens),
        paid_policy_tags=tuple(
            t.strip() for t in env.get("APPROVER_PAID_POLICY_TAGS", "paid").split(",") if t.strip()
        ),
        past_due_grace=_duration("APPROVER_PAST_DUE_GRACE", env.get("APPROVER_PAST_DUE_GRACE")),
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
    )
