"""Liveness, readiness and metrics: the details only on the internal listener."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, jsonify, request
from redis.exceptions import RedisError

from approver.pipeline import metrics

bp = Blueprint("health", __name__)

# Workers check the Dashboard and the rules at least every reconcile interval; older news
# than a few intervals says no worker is checking.
STALE_INTERVALS = 3


def internal() -> bool:
    """Whether this request came in on the internal listener (APPROVER_INTERNAL_BIND).

    Under gunicorn the connection's own socket says which listener took it; SERVER_PORT is
    taken from the Host header when the public listener is a unix socket.
    """
    port = current_app.extensions["approver"].settings.internal_port
    if port is None:
        return False
    sock = request.environ.get("gunicorn.socket")
    local = sock.getsockname() if sock is not None else ("", request.environ.get("SERVER_PORT"))
    return isinstance(local, tuple) and str(local[1]) == str(port)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when Redis answers; on the internal listener, what workers last saw, too.

    Only Redis makes this tier unready: it queues webhooks while the Dashboard is away,
    and taking it out of rotation then would lose them. A Dashboard that is down or rules
    that fail show as "degraded".
    """
    rt = current_app.extensions["approver"]
    try:
        health = rt.store.health()  # answered at all: Redis is up
    except RedisError as exc:
        details = {"redis": type(exc).__name__} if internal() else {}
        return jsonify(status="unavailable", **details), 503, {"Retry-After": "5"}
    checks = {"redis": "ok", "dashboard": health.get("dashboard") or "unknown",
              "rules": "ok" if health.get("rules_revision") else "unknown",
              "rules_revision": health.get("rules_revision") or None,
              "checked_at": health.get("at") or None}
    if health.get("rules_error"):
        checks["rules"] = f"last edit failed, previous rules in force: {health['rules_error']}"
    if not health.get("rules_revision") and health.get("rules_error"):
        checks["rules"] = f"not loaded: {health['rules_error']}"
    stale = _age(health.get("at")) > STALE_INTERVALS * rt.settings.reconcile_interval
    if stale:
        checks["workers"] = "no worker has reported recently"
    degraded = stale or checks["dashboard"] != "ok" or checks["rules"] != "ok"
    # Rule file paths, parse errors and Dashboard errors are for operators only.
    return jsonify(status="degraded" if degraded else "ok", **(checks if internal() else {})), 200


def _age(at: str | None) -> float:
    if not at:
        return float("inf")
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return (datetime.now(UTC) - moment).total_seconds()


@bp.get("/metrics")
def prometheus():
    """Prometheus metrics: this tier's processes and the cluster's state in Redis."""
    if not internal():
        abort(404)  # like any unknown path: the public listener has no metrics
    body, content_type = metrics.render(current_app.extensions["approver"])
    return Response(body, content_type=content_type)
