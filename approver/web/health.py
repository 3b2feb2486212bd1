"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from redis.exceptions import RedisError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when Redis answers (within the web tier's short socket timeout)."""
    rt = current_app.extensions["approver"]
    try:
        rt.redis.ping()
    except RedisError as exc:
        return jsonify(status="unavailable", redis=type(exc).__name__), 503
    return jsonify(status="ok", redis="ok")
