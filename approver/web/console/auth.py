"""Who may use the console: local accounts, single sign-on (OIDC), a trusted proxy's user
header; signed session cookies backed by Redis, an idle timeout, CSRF tokens on every form,
login attempts rate-limited, and each sign-in and sign-out in the decision log.

Over 300 lines: the ways in share one session and one set of checks, read side by side.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Blueprint, Flask, current_app, flash, g, redirect, request, session, url_for
from joserfc.errors import JoseError

from approver.state import PREFIX, accounts
from approver.web.console.pages import message, render
from approver.web.limits import client_address

log = logging.getLogger(__name__)

bp = Blueprint("console_auth", __name__, url_prefix="/console")

FAILURE_WINDOW = 900
LIMITS = {"ip": 20, "name": 5}  # failed logins per window, per address and per name
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,254}")


def init_app(app: Flask, settings) -> None:
    """Register the single sign-on client (if configured) and the CSRF token helper."""
    if settings.oidc_issuer:
        oauth = OAuth(app)
        oauth.register(
            "oidc", client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile", "timeout": 10})
        app.extensions["approver_oidc"] = oauth.oidc
    app.jinja_env.globals["csrf_token"] = csrf_token


def _rt():
    return current_app.extensions["approver"]


def methods() -> dict[str, bool]:
    """The ways to sign in that are set up."""
    settings = _rt().settings
    return {"local": accounts.any_exist(_rt().store), "oidc": bool(settings.oidc_issuer),
            "proxy": bool(settings.console_user_header)}


# -- forms -----------------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's token, which every form sends back."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_refused():
    """A 400 page if the form's token is missing or not this session's, else None."""
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf", "")
    if expected and sent and hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    log.warning("console form refused: CSRF token %s", "missing" if not sent else "wrong")
    return message(400, "Form refused",
                   "This form's security token is missing or out of date: the page may be "
                   "old, or the form was sent from somewhere else. Reload the page and try "
                   "again.")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    value = value or ""
    parts = urlsplit(value)
    if (parts.scheme or parts.netloc or not value.startswith("/console/")
            or "\\" in value or "//" in value or ".." in value or not value.isprintable()):
        return url_for("console.inbox")
    return value


# -- where a request comes from --------------------------------------------------------------
def _trusted(address: str | None) -> bool:
    """Whether the peer is one of the proxies whose user header is believed."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in _rt().settings.console_trusted_proxies)


def origin() -> str:
    """Where a request comes from, for the audit: the peer, and the client a trusted proxy
    names."""
    peer, client = request.remote_addr or "?", client_address()
    return f"{client} via {peer}" if client != (request.remote_addr or "") else peer


def _proxy_user() -> str | None:
    header = _rt().settings.console_user_header
    if not header or not _trusted(request.remote_addr):
        return None  # the header is believed only from the configured proxies
    value = request.headers.get(header, "").strip()
    return value if _PRINTABLE.fullmatch(value) else None


# -- sessions --------------------------------------------------------------------------------
def sign_in(name: str, via: str) -> None:
    """Start a fresh session (new id, new CSRF token) and audit it."""
    rt = _rt()
    session.clear()
    session["sid"] = accounts.start_session(rt.store, name, via, origin(),
                                            rt.settings.console_idle_timeout)
    session["csrf"] = secrets.token_urlsafe(32)
    g.console_user = {"name": name, "via": via}
    rt.store.log("console_login", "", by=name, via=via, **{"from": origin()})
    log.info("console: %s signed in (%s)", name, via)


def require_login():
    """Before every console page: a signed-in person, or a redirect to the login page."""
    rt = _rt()
    sid = session.get("sid")
    record = accounts.touch_session(rt.store, sid, rt.settings.console_idle_timeout) \
        if sid else None
    proxied = _proxy_user()
    if proxied and (record is None or (record["name"], record["via"]) != (proxied, "proxy")):
        sign_in(proxied, "proxy")
        record = g.console_user
    if _closed(record):
        # A 4xx: a deployment without the console is not failing (no 5xx in its metrics).
        return message(
            403, "The console is not set up",
            "No way to sign in is configured, so the console is closed. An operator adds a "
            "local account with `approver admin add NAME`, or configures single sign-on "
            "(APPROVER_OIDC_ISSUER) or a trusted proxy (APPROVER_CONSOLE_USER_HEADER); "
            "see docs/console.md.")
    if record is None:
        if sid:
            session.pop("sid")
            flash(f"Your session ended after {_minutes(rt.settings.console_idle_timeout)} "
                  "without use; sign in again.", "error")
        return redirect(url_for("console_auth.login",
                                next=request.full_path if request.method == "GET" else None))
    g.console_user = {"name": record["name"], "via": record["via"]}
    if request.method == "POST":
        return csrf_refused()
    return None


def _closed(record: dict | None) -> bool:
    """Whether no way to sign in is set up; local accounts are counted in Redis only when
    neither the settings nor a local session (removing an account ends its sessions) tell."""
    settings = _rt().settings
    if settings.oidc_issuer or settings.console_user_header or (
            record is not None and record["via"] == "local"):
        return False
    return not accounts.any_exist(_rt().store)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


# -- rate limit ------------------------------------------------------------------------------
def _failure_keys(name: str) -> dict[str, str]:
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    # Behind a trusted proxy every client shares its address: count the client's instead.
    return {"ip": f"{PREFIX}console:login-failures:ip:{client_address()}",
            "name": f"{PREFIX}console:login-failures:name:{digest}"}


def _blocked_for(name: str) -> int:
    """Seconds to wait before trying again (0: go ahead)."""
    redis = _rt().redis
    keys = _failure_keys(name)
    counts = redis.mget([keys["ip"], keys["name"]])
    for (kind, key), count in zip(keys.items(), counts, strict=True):
        if count and int(count) >= LIMITS[kind]:
            return max(1, redis.ttl(key))
    return 0


def _failed(name: str) -> None:
    pipe = _rt().redis.pipeline(transaction=True)
    for key in _failure_keys(name).values():
        pipe.incr(key)
        pipe.expire(key, FAILURE_WINDOW)
    pipe.execute()


# -- pages -----------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a local account (or go on to single sign-on)."""
    ways = methods()
    if not any(ways.values()):
        return require_login()
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if session.get("sid") and accounts.touch_session(
                _rt().store, session["sid"], _rt().settings.console_idle_timeout):
            return redirect(target)
        return render("login.html", title="Sign in", ways=ways, next=target)
    refused = csrf_refused()
    if refused:
        return refused
    name = request.form.get("name", "").strip()[:64]
    password = request.form.get("password", "")[:1024]
    wait = _blocked_for(name)
    if wait:
        return render("login.html", 429, {"Retry-After": str(wait)}, title="Sign in",
                      ways=ways, next=target,
                      error=f"Too many failed attempts: try again in {_minutes(wait)}.")
    if ways["local"] and name and accounts.verify(_rt().store, name, password):
        _rt().redis.delete(_failure_keys(name)["name"])
        sign_in(name, "local")
        return redirect(target, 303)
    _failed(name)
    _rt().store.log("console_login_failed", "", by=name, via="local", **{"from": origin()})
    return render("login.html", 401, title="Sign in", ways=ways, next=target, name=name,
                  error="Wrong name or password.")


@bp.post("/logout")
def logout():
    """End the session."""
    refused = csrf_refused()
    if refused:
        return refused
    rt = _rt()
    sid = session.get("sid")
    record = accounts.touch_session(rt.store, sid, 1) if sid else None
    if record:
        accounts.end_session(rt.store, sid, record["name"])
        rt.store.log("console_logout", "", by=record["name"], via=record["via"],
                     **{"from": origin()})
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("console_auth.login"), 303)


@bp.get("/oidc/login")
def oidc_login():
    """Off to the single sign-on provider."""
    client = current_app.extensions.get("approver_oidc")
    if client is None:
        return message(404, "No single sign-on", "Single sign-on is not configured here.")
    session["oidc_next"] = safe_next(request.args.get("next"))
    try:
        return client.authorize_redirect(_callback_url())
    except requests.RequestException as exc:
        log.warning("single sign-on provider unreachable: %s", type(exc).__name__)
        return message(503, "Sign-on unavailable",
                       "The single sign-on provider did not answer; try again shortly.")


def _callback_url() -> str:
    base = _rt().settings.public_url
    path = url_for("console_auth.oidc_callback")
    return f"{base}{path}" if base else url_for("console_auth.oidc_callback", _external=True)


@bp.get("/oidc/callback")
def oidc_callback():
    """Back from the provider: check the ID token and who it names."""
    client = current_app.extensions.get("approver_oidc")
    if client is None:
        return message(404, "No single sign-on", "Single sign-on is not configured here.")
    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        return message(400, "Sign-in failed",
                       f"The single sign-on answer was refused ({exc.error}). Sign in again.")
    except requests.RequestException as exc:
        log.warning("single sign-on provider unreachable: %s", type(exc).__name__)
        return message(503, "Sign-on unavailable",
                       "The single sign-on provider did not answer; try again shortly.")
    except (JoseError, AuthlibBaseError, ValueError) as exc:
        # An ID token that does not verify: signature, issuer, audience, expiry, nonce.
        log.warning("single sign-on token refused: %s", type(exc).__name__)
        return message(400, "Sign-in failed", "The sign-on token did not verify. Sign in "
                       "again.")
    claims = token.get("userinfo") or {}
    who = _allowed(claims)
    if who is None:
        name = str(claims.get("email") or claims.get("sub") or "?")[:254]
        _rt().store.log("console_login_refused", "", by=name, via="oidc",
                        **{"from": origin()})
        return message(403, "Not allowed",
                       f"{name} signed in, but is not allowed to use this console. Ask an "
                       "admin to add you (APPROVER_OIDC_ALLOWED_USERS or _GROUPS).")
    target = session.pop("oidc_next", None)
    sign_in(who, "oidc")
    return redirect(safe_next(target), 303)


def _allowed(claims) -> str | None:
    """The name to record for a signed-in person, or None if they may not use the console."""
    settings = _rt().settings
    sub = str(claims.get("sub") or "")
    # Only an email the provider says it verified names a person (an absent claim does not).
    email = str(claims.get("email") or "") if claims.get("email_verified") is True else ""
    name = email or sub
    if not name or not _PRINTABLE.fullmatch(name):
        return None
    groups = claims.get(settings.oidc_groups_claim) or []
    groups = {str(x) for x in groups} if isinstance(groups, list) else {str(groups)}
    if ({email.lower(), sub.lower()} - {""}) & set(settings.oidc_allowed_users) or (
            groups & set(settings.oidc_allowed_groups)):
        return name
    return None
