"""Every error the API answers is JSON: ``{"error", "message", "status"}``, never an HTML page or a
traceback.  HTTP errors (werkzeug's, and ours raised with ``fail``) keep their status and headers
(405's Allow, 401's WWW-Authenticate); anything else is logged with its traceback (masked by the log
handler) and answered with a generic 500 that names the request id to grep for, and nothing else.
"""
from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import Flask, Response, g, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from ..worker.monitor import db_error_line

log = logging.getLogger("dqueue.web")


class ApiError(HTTPException):
    """An HTTP error with a JSON body of our own (``extra`` is merged into it)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.code = status
        self.extra = extra
        self.extra_headers = headers or {}


def fail(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> NoReturn:
    raise ApiError(status, message, headers, **extra)


def json_error(status: int, name: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": name, "message": message, "status": status, **extra})
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = json_error(status, HTTP_STATUS_CODES.get(status, "Error"), exc.description or "",
                          **getattr(exc, "extra", {}))
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    for key, value in getattr(exc, "extra_headers", {}).items():
        response.headers[key] = value
    return response


def _unexpected(exc: Exception) -> Response:
    # The traceback goes to the log only (the handler masks secrets in it); the caller learns
    # nothing about the code or the database, just the id to quote.
    request_id = getattr(g, "request_id", "-")
    log.error("web request failed unexpectedly: request=%s %s: %s", request_id,
              type(exc).__name__, exc, exc_info=exc)
    return json_error(500, "Internal Server Error",
                      f"an unexpected error; the server log has the details (request {request_id})",
                      requestId=request_id)


def _database_down(exc: SQLAlchemyError) -> Response:
    # A database that stops answering mid-request is the server's trouble, not a bug: 503, so a
    # caller (or its load balancer) retries; the driver's text stays in the log.
    request_id = getattr(g, "request_id", "-")
    log.warning("web request: database error: request=%s %s", request_id, db_error_line(exc))
    return json_error(503, "Service Unavailable",
                      f"the database is unavailable; try again later (request {request_id})",
                      requestId=request_id)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, _database_down)
    app.register_error_handler(Exception, _unexpected)
