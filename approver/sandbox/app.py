"""The sandbox Dashboard's Flask app: auth, faults, call log, Tyk-shaped errors."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from approver.sandbox import control, dashboard
from approver.sandbox.harness import Harness
from approver.sandbox.responses import envelope, sandbox
from approver.sandbox.state import Sandbox, SandboxError

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox/"

# Tyk CONTRACT §3.0: the error envelope's wording for the statuses not raised by the state.
_HTTP_MESSAGES = {
    401: "Not authorised",
    404: "Not found",
    405: "Method not allowed",
}


def create_app(
    secret: str, seed: str | Path | dict | None = None, webhook_url: str | None = None
) -> Flask:
    """A sandbox Dashboard app answering to `authorization: <secret>`, seeded from `seed`."""
    if not secret:
        raise ValueError("the sandbox Dashboard needs a non-empty secret")
    app = Flask(__name__)
    instrument(app, Sandbox(seed=seed, webhook_url=webhook_url), secret, envelope)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(dashboard.health)
    app.register_blueprint(control.bp)
    app.register_blueprint(control.classic)
    return app


def instrument(
    app: Flask, state: Harness, secret: str, error: Callable[[int, str], Response]
) -> Flask:
    """Give a simulated API its state, secret check, faults, call log and error answers.

    `error(status, message)` builds the simulated API's own error body; shared by the
    sandbox Dashboard and the sandbox Developer Portal.
    """
    app.json.sort_keys = False  # keep Tyk's field order in answers
    app.extensions["sandbox"] = state
    app.extensions["sandbox_error"] = error
    app.sandbox = state  # type: ignore[attr-defined]
    app.config["SANDBOX_SECRET"] = secret
    app.before_request(_authenticate_and_inject)
    app.after_request(_record)
    app.register_error_handler(SandboxError, _sandbox_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _error(status: int, message: str) -> Response:
    return current_app.extensions["sandbox_error"](status, message)


def _is_control() -> bool:
    return request.path.startswith(CONTROL_PREFIX)


def _authenticate_and_inject() -> Response | None:
    """Refuse a wrong `authorization` header; then play any armed fault for this call."""
    # Tyk CONTRACT §3.0: the raw key, no "Bearer" prefix.
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, current_app.config["SANDBOX_SECRET"].encode()):
        return _error(401, _HTTP_MESSAGES[401])
    if _is_control():
        return None
    denied = sandbox().refused(request.method, request.path)
    if denied:
        return _error(403, denied)
    fault = sandbox().take_fault(request.method, request.path)
    if fault is None:
        return None
    if fault.hang:
        time.sleep(fault.hang)
    if fault.status is not None:
        return _error(fault.status, fault.message or f"Sandbox fault: injected {fault.status}.")
    return None


def _record(response: Response) -> Response:
    """Log every Dashboard call (not control calls, never headers) with its status."""
    if not _is_control():
        sandbox().record_call(
            request.method, request.path, request.args.to_dict(flat=True), response.status_code
        )
    return response


def _sandbox_error(exc: SandboxError) -> Response:
    return _error(exc.status, exc.message)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    resp = _error(code, _HTTP_MESSAGES.get(code, exc.name))
    if code == 405 and getattr(exc, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def _unexpected_error(exc: Exception) -> Response:
    # Never a traceback to the client; the log keeps it.
    log.exception("sandbox failed on %s %s", request.method, request.path)
    return _error(500, "Internal server error")
