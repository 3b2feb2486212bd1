"""Who may use the console: local accounts, single sign-on (OIDC), a trusted proxy's user
header; signed session cookies backed by Redis, an idle timeout and a lifetime, the way in
re-checked on every request, CSRF tokens on every form, login attempts limited
(`attempts.py`), and each sign-in and sign-out in the decision log.

Over 300 lines: the ways in share one session and one set of checks, read side by side.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Flask, current_app, flash, g, redirect, request, session, url_for

from approver.errors import ConfigError
from approver.state import accounts
from approver.web.console import attempts
from approver.web.console.pages import message, render
from approver.web.limits import client_address

log = logging.getLogger(__name__)

bp = Blueprint("console_auth", __name__, url_prefix="/console")

_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,254}")


def init_app(app: Flask, settings) -> None:
    """Register the single sign-on client (if configured) and the CSRF token helper."""
    if settings.oidc_issuer:
        # Imported only here: authlib and its crypto add ~15 MB to every web worker.
        from authlib.integrations.flask_client import OAuth

        if not settings.public_url:  # else the callback address would come from Host
            raise ConfigError("APPROVER_PUBLIC_URL is required with APPROVER_OIDC_ISSUER")
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
def sign_in(way: str, name: str, **facts) -> None:
    """Start a fresh session (new id, new CSRF token) for `name` signed in `way`, and audit
    it; `facts` are what the way in re-checks on each request."""
    rt = _rt()
    who = accounts.person(way, name)
    session.clear()
    session["sid"] = accounts.start_session(
        rt.store, who, way, origin(), rt.settings.console_idle_timeout,
        rt.settings.console_session_lifetime, **facts)
    session["csrf"] = secrets.token_urlsafe(32)
    g.console_user = {"name": who, "via": way}
    rt.store.log("console_login", "", by=who, via=way, **{"from": origin()})
    log.info("console: %s signed in", who)


def current() -> dict | None:
    """This request's session, if it is open and its way in still admits the person; a
    session whose person is no longer admitted is ended and audited."""
    rt = _rt()
    sid = session.get("sid")
    record = accounts.touch_session(rt.store, sid, rt.settings.console_idle_timeout) \
        if sid else None
    if record is None or _admitted(record):
        return record
    accounts.end_session(rt.store, sid, record["name"])
    rt.store.log("console_session_ended", "", by=record["name"], via=record["via"],
                 reason="no longer admitted", **{"from": origin()})
    log.info("console: session of %s ended: no longer admitted", record["name"])
    return None


def _admitted(record: dict) -> bool:
    """Whether the account, the way in and the allow-lists still admit a session's person."""
    settings, way = _rt().settings, record.get("via")
    name = str(record.get("name", "")).partition(":")[2]
    if way == "local":  # the account is there, with the password signed in with
        return accounts.stamp(_rt().store, name) == record.get("stamp")
    if way == "oidc":
        return bool(settings.oidc_issuer) and _admits(name, record.get("groups", []))
    if way == "proxy":  # every request comes through the proxy, naming the same person
        return _proxy_user() == name
    return False


def require_login():
    """Before every console page: a signed-in person, or a redirect to the login page."""
    rt = _rt()
    sid = session.get("sid")
    record = current()
    proxied = _proxy_user()
    if proxied and (record is None or record["name"] != accounts.person("proxy", proxied)):
        sign_in("proxy", proxied)
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
            flash(f"Your session has ended (after {_minutes(rt.settings.console_idle_timeout)}"
                  f" without use, {_minutes(rt.settings.console_session_lifetime)} after "
                  "signing in, or a change to your access); sign in again.", "error")
        return redirect(url_for("console_auth.login",
                                next=request.full_path if request.method == "GET" else None))
    g.console_user = {"name": record["name"], "via": record["via"], **_membership(record)}
    if request.method == "POST":
        return csrf_refused()
    return None


def _membership(record: dict) -> dict:
    """The signed-in person's groups and email, as their way in says them now: a local
    account's from its record, single sign-on's from the ID token signed in with, a proxy's
    from its groups header on this request."""
    way, name = record.get("via"), str(record.get("name", "")).partition(":")[2]
    if way == "local":
        found = accounts.profile(_rt().store, name) or {}
        return {"groups": found.get("groups") or [], "email": found.get("email") or ""}
    if way == "oidc":
        return {"groups": accounts.clean_groups(record.get("groups") or []), "email": name}
    header = _rt().settings.console_groups_header
    listed = request.headers.get(header, "") if header and _trusted(request.remote_addr) else ""
    return {"groups": accounts.clean_groups(listed.split(",")),
            "email": name if "@" in name else ""}


def _closed(record: dict | None) -> bool:
    """Whether no way to sign in is set up; local accounts are counted in Redis only when
    neither the settings nor a local session (its account is re-checked) tell."""
    settings = _rt().settings
    if settings.oidc_issuer or settings.console_user_header or (
            record is not None and record["via"] == "local"):
        return False
    return not accounts.any_exist(_rt().store)


def _minutes(seconds: int) -> str:
    if seconds >= 7200:
        return f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


# -- pages -----------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a local account (or go on to single sign-on)."""
    ways = methods()
    if not any(ways.values()):
        return require_login()
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current():
            return redirect(target)
        return render("login.html", title="Sign in", ways=ways, next=target)
    refused = csrf_refused()
    if refused:
        return refused
    name = request.form.get("name", "").strip()[:64]
    password = request.form.get("password", "")

    def page(status: int, error: str, headers=None):
        return render("login.html", status, headers, title="Sign in", ways=ways, next=target,
                      name=name, error=error)

    if len(password) > accounts.MAX_PASSWORD:  # none can be set, so none is checked
        return page(400, f"A password is at most {accounts.MAX_PASSWORD} characters.")
    wait = attempts.count(name)  # counted before the check, so parallel guesses are too
    if wait:
        return page(429, f"Too many attempts: try again in {_minutes(wait)}.",
                    {"Retry-After": str(wait)})
    try:
        stamp = accounts.verify(_rt().store, name, password) if ways["local"] and name \
            else None
    except accounts.Busy:
        log.warning("console: sign-in refused, too many being checked at once")
        return page(503, "Too many sign-ins at once: try again in a few seconds.",
                    {"Retry-After": "5"})
    if stamp is not None:
        attempts.succeeded(name)
        sign_in("local", name, stamp=stamp)
        return redirect(target, 303)
    who = accounts.person("local", name)
    _rt().store.log("console_login_failed", "", by=who, via="local", **{"from": origin()})
    return page(401, "Wrong name or password.")


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
    # Never from the Host header: APPROVER_PUBLIC_URL is required with single sign-on.
    return _rt().settings.public_url + url_for("console_auth.oidc_callback")


@bp.get("/oidc/callback")
def oidc_callback():
    """Back from the provider: check the ID token and who it names."""
    client = current_app.extensions.get("approver_oidc")
    if client is None:
        return message(404, "No single sign-on", "Single sign-on is not configured here.")
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.flask_client import OAuthError
    from joserfc.errors import JoseError

    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        # The provider's own words (exc.error, its description) are for the log, not the page.
        log.warning("single sign-on answer refused: %r %r", exc.error, exc.description)
        return message(400, "Sign-in failed",
                       "The single sign-on answer was refused. Sign in again.")
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
    email, groups = _verified_email(claims), _groups(claims)
    if not email or not _admits(email, groups):
        name = accounts.person("oidc", email or str(claims.get("sub") or "?")[:254])
        _rt().store.log("console_login_refused", "", by=name, via="oidc",
                        **{"from": origin()})
        return message(403, "Not allowed",
                       f"{name} signed in, but is not allowed to use this console. Ask an "
                       "admin to add your verified email to APPROVER_OIDC_ALLOWED_USERS, or "
                       "you to a group in APPROVER_OIDC_ALLOWED_GROUPS.")
    target = session.pop("oidc_next", None)
    # All the person's groups (cut to size): the allow-list admits, the rules' steps route.
    sign_in("oidc", email, groups=accounts.clean_groups(groups))
    return redirect(safe_next(target), 303)


def _verified_email(claims) -> str | None:
    """The email the provider says it verified (an absent claim does not), if printable."""
    email = str(claims.get("email") or "") if claims.get("email_verified") is True else ""
    return email if email and _PRINTABLE.fullmatch(email) else None


def _groups(claims) -> list[str]:
    groups = claims.get(_rt().settings.oidc_groups_claim) or []
    return [str(x) for x in groups] if isinstance(groups, list) else [str(groups)]


def _admits(email: str, groups) -> bool:
    """Whether the allow-lists admit a person with this verified email and these groups."""
    settings = _rt().settings
    return email.lower() in settings.oidc_allowed_users or bool(
        set(groups) & set(settings.oidc_allowed_groups))
