"""Tyk-shaped answers and the current app's Sandbox, shared by the blueprints."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from approver.sandbox.state import Sandbox


def envelope(status: int, message: str) -> Response:
    """Tyk's error envelope `{"Status":"Error","Message":…,"Meta":null}` (Tyk CONTRACT §3.0)."""
    resp = jsonify({"Status": "Error", "Message": message, "Meta": None})
    resp.status_code = status
    return resp


def ok(message: str) -> Response:
    """Tyk's success envelope for writes (Tyk CONTRACT §3.0)."""
    return jsonify({"Status": "OK", "Message": message, "Meta": None})


def sandbox() -> Sandbox:
    """The Sandbox of the current app."""
    return current_app.extensions["sandbox"]
