"""Every error as JSON `{"error": {"code", "message"}}`; bad input is never a 5xx."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer with a status, a stable code and a human reason."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str):
    """A JSON error answer."""
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Register the JSON error handlers."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        if exc.code == 413:
            code = "too_large"
        return error_response(exc.code or 400, code, exc.description or exc.name)

    @app.errorhandler(RedisError)
    def redis_down(exc: RedisError):
        log.warning("Redis unavailable: %s", type(exc).__name__)
        response = error_response(
            503, "unavailable", "The queue is unavailable; retry later."
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal", "Internal error.")
