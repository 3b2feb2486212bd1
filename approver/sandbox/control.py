"""The sandbox's own control API under /_sandbox/ for tests and benchmarks in other processes."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from approver.sandbox import responses as base
from approver.sandbox.state import SandboxError

bp = Blueprint("control", __name__, url_prefix="/_sandbox")
# The classic Dashboard's own control calls (the new portal's are in sandbox/portal.py).
classic = Blueprint("control_classic", __name__, url_prefix="/_sandbox")


def _body() -> dict[str, Any]:
    """The JSON object body; SandboxError 400 otherwise."""
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SandboxError(400, "The body must be a JSON object.")
    return body


@bp.post("/faults")
def add_fault() -> tuple[Response, int]:
    """Arm a fault: `{"method","path","status"|"hang","times","message"}`."""
    body = _body()
    try:
        fault = base.sandbox().add_fault(
            body.get("method"),
            body.get("path", ""),
            status=body.get("status"),
            hang=body.get("hang"),
            times=body.get("times", 1),
            message=body.get("message"),
        )
    except ValueError as exc:
        raise SandboxError(400, str(exc)) from None
    return jsonify({"fault": fault}), 201


@bp.get("/faults")
def list_faults() -> Response:
    """The armed faults."""
    return jsonify({"faults": base.sandbox().faults()})


@bp.delete("/faults")
def clear_faults() -> Response:
    """Disarm every fault."""
    base.sandbox().clear_faults()
    return jsonify({"faults": []})


@bp.get("/calls")
def list_calls() -> Response:
    """The Dashboard call log, filtered by `method` and `path` prefix."""
    calls = base.sandbox().calls(request.args.get("method"), request.args.get("path"))
    return jsonify({"calls": calls})


@bp.delete("/calls")
def clear_calls() -> Response:
    """Empty the call log."""
    base.sandbox().clear_calls()
    return jsonify({"calls": []})


@classic.post("/key-requests")
def create_key_request() -> tuple[Response, int]:
    """Submit a key request as a developer would: `{"developer","policies","fields"}`."""
    body = _body()
    developer = body.get("developer")
    if not isinstance(developer, str) or not developer:
        raise SandboxError(400, "developer must be a developer id or email")
    created = base.sandbox().create_key_request(
        developer,
        body.get("policies") or [],
        fields=body.get("fields"),
        approved=bool(body.get("approved", False)),
    )
    return jsonify(created), 201


@bp.put("/webhook")
def set_webhook() -> Response:
    """Set (or with null/"" clear) the webhook URL; `headers`: custom headers to send."""
    body = _body()
    url, headers = body.get("url"), body.get("headers")
    if url is not None and not isinstance(url, str):
        raise SandboxError(400, "url must be a string or null")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise SandboxError(400, "headers must be an object of strings")
    base.sandbox().set_webhook_url(url, headers)
    return jsonify({"url": base.sandbox().webhook_url})


@bp.put("/modes")
def set_modes() -> Response:
    """Switch Tyk-faithful modes: `{"record_delay": 5, "withheld_rights": ["policy"], …}`."""
    state = base.sandbox()
    try:
        for name, value in _body().items():
            state.set_mode(name, value)
    except ValueError as exc:
        raise SandboxError(400, str(exc)) from None
    return jsonify({"modes": state.modes()})


@bp.get("/shapes")
def list_shapes() -> Response:
    """Each route with a recorded shape: its variants and the one answered."""
    shapes = base.sandbox().shapes
    return jsonify({"shapes": {route: {"variants": variants, "answered": shapes.variant(route)}
                               for route, variants in shapes.routes().items()}})


@bp.put("/shapes")
def choose_shape() -> Response:
    """Answer a route in another recorded variant: `{"route", "variant"}` (null: default)."""
    body = _body()
    try:
        base.sandbox().shapes.choose(str(body.get("route")), body.get("variant"))
    except ValueError as exc:
        raise SandboxError(400, str(exc)) from None
    return list_shapes()


@classic.post("/key-requests/<request_id>/generate-key")
def generate_key(request_id: str) -> tuple[Response, int]:
    """The developer's "Generate Key" after a secure approval: `{"key_id"}` of the new key."""
    return jsonify({"key_id": base.sandbox().generate_key(request_id)}), 201


@bp.post("/reset")
def reset() -> Response:
    """Reseed the data; clear faults and the call log."""
    base.sandbox().reset()
    return jsonify({"reset": True})
