"""Tyk-shaped answers and the current app's Sandbox, shared by the blueprints."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from approver.sandbox.shapes import catalogue, project
from approver.sandbox.state import Sandbox


def envelope(status: int, message: str) -> Response:
    """Tyk's error envelope `{"Message":…,"Meta":null,"Status":"Error"}` (Tyk CONTRACT §3.0)."""
    return failure(status, message)


def failure(status: int, message: str, variant: str | None = None) -> Response:
    """An error envelope in the chosen (or the given) recorded variant."""
    shapes = sandbox().shapes
    shape = variant or shapes.variant("Error")
    resp = jsonify(project({"Status": "Error", "Message": message, "Meta": _meta(shape)},
                           catalogue()["classic"]["Error"][shape]))
    resp.status_code = status
    return resp


def ok(message: str) -> Response:
    """Tyk's success envelope for writes (Tyk CONTRACT §3.0), `Meta` as the variant has it."""
    variant = sandbox().shapes.variant("OK")
    return render("OK", {"Status": "OK", "Message": message, "Meta": _meta(variant)})


def _meta(variant: str) -> str | None:
    # Tyk CONTRACT §3.0 / recorded README: `Meta` is null in some versions, "" in others.
    return None if variant == "meta-null" else ""


def render(route: str, record) -> Response:
    """`record` as JSON in the shape Tyk answers `route` with."""
    return jsonify(sandbox().shapes.render(route, record))


def sandbox() -> Sandbox:
    """The Sandbox of the current app."""
    return current_app.extensions["sandbox"]
