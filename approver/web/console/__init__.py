"""The web console at /console/: the review inbox, people's decisions and the decision log.

Pages are rendered on the server and work without JavaScript; everything a person does
goes through Redis (a claim and a job), never straight to the Dashboard.
"""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup

from approver import config
from approver.terminal import printable
from approver.web.console import assets, auth, links, views

# The console's own stylesheet is the one thing its pages may load.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")


class ConsoleSessions(SecureCookieSessionInterface):
    """The session cookie, `__Host-approver_console` (path `/`: the prefix requires it) where
    the console is served over HTTPS (APPROVER_PUBLIC_URL is https, or the request came in
    over TLS): no other host or path can plant or shadow it there. Over plain HTTP (the
    demo on localhost) a `__Host-` cookie cannot be relied on: `approver_console`, path
    `/console`, still `Secure`."""

    def __init__(self, https: bool):
        self.https = https

    def open_session(self, app: Flask, request):
        """The console's session; None (Flask's null session) on every other path: only the
        console has sessions, and a webhook need not pay for reading a cookie."""
        if not _console_path(request.path):
            return None
        return super().open_session(app, request)

    def _prefixed(self) -> bool:
        return self.https or request.is_secure

    def get_cookie_name(self, app: Flask) -> str:
        return "__Host-approver_console" if self._prefixed() else "approver_console"

    def get_cookie_path(self, app: Flask) -> str:
        return "/" if self._prefixed() else "/console"


def init_app(app: Flask, settings: config.Settings) -> None:
    """Set up signed session cookies, single sign-on if configured, and the pages."""
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SECURE=True,  # browsers keep Secure cookies on http://localhost too
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax, not Strict: the sign-on callback is cross-site
    )
    app.session_interface = ConsoleSessions(
        https=(settings.public_url or "").startswith("https://"))
    # Every text a page shows has its control, bidi and invisible characters written out
    # (`\u202e`), as the command line shows them: a developer's field cannot reorder or
    # hide what a reviewer reads.
    app.jinja_env.finalize = visible
    auth.init_app(app, settings)
    app.register_blueprint(assets.bp)  # no session needed: the login page uses them
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(links.bp)  # a mail's action links: no session needed

    @app.after_request
    def console_headers(response):
        if _console_path(request.path):
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "no-referrer"
            if not request.path.startswith("/console/static/"):
                response.headers["Cache-Control"] = "no-store"
        return response


def _console_path(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def visible(value):
    """A value as a page shows it: text with its invisible characters written out; markup
    (a macro's output) as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value
