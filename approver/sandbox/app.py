"""The sandbox Dashboard's Flask app: auth, faults, call log, Tyk-shaped errors."""

from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from approver.sandbox import control, dashboard
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
    app.json.sort_keys = False  # keep Tyk's field order in answers
    state = Sandbox(seed=seed, webhook_url=webhook_url)
    app.extensions["sandbox"] = state
    app.sandbox = state  # type: ignore[attr-defined]
    app.config["SANDBOX_SECRET"] = secret
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(control.bp)
    app.before_request(_authenticate_and_inject)
    app.after_request(_record)
    app.register_error_handler(SandboxError, _sandbox_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _is_control() -> bool:
    return request.path.startswith(CONTROL_PREFIX)


def _authenticate_and_inject() -> Response | None:
    """Refuse a wrong `authorization` header; then play any armed fault for this call."""
    # Tyk CONTRACT §3.0: the raw key, no "Bearer" prefix.
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, current_app.config["SANDBOX_SECRET"].encode()):
        return envelope(401, _HTTP_MESSAGES[401])
    if _is_control():
        return None
    fault = sandbox().take_fault(request.method, request.path)
    if fault is None:
        return None
    if fault.hang:
        time.sleep(fault.hang)
    if fault.status is not None:
        return envelope(fault.status, fault.message or f"Sandbox fault: injected {fault.status}.")
    return None


def _record(response: Response) -> Response:
    """Log every Dashboard call (not control calls, never headers) with its status."""
    if not _is_control():
        sandbox().record_call(
            request.method, request.path, request.args.to_dict(flat=True), response.status_code
        )
    return response


def _sandbox_error(exc: SandboxError) -> Response:
    return envelope(exc.status, exc.message)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    resp = envelope(code, _HTTP_MESSAGES.get(code, exc.name))
    if code == 405 and getattr(exc, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def _unexpected_error(exc: Exception) -> Response:
    # Never a traceback to the client; the log keeps it.
    log.exception("sandbox Dashboard failed on %s %s", request.method, request.path)
    return envelope(500, "Internal server error")
