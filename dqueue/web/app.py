"""The Flask application of ``dqueue web``: built by ``create_app(engine, settings)``, no globals.

What every request goes through, in order: an id and a start time; the body limit (413 before the
body is read); the bearer token unless the endpoint is public (``/health``, and ``/webHook``, which
GitLab authenticates with its own secret); the endpoint; one log line (method, path, status,
duration, request id, never a header).  Each endpoint takes a database connection from the engine's
pool and gives it back before it answers, so nothing is held across requests or waitress threads.
"""
from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, request
from sqlalchemy import Engine

from .. import config
from . import errors, routes
from .auth import Tokens, bearer
from .context import WebContext, context
from .errors import fail
from .settings import WebSettings

log = logging.getLogger("dqueue.web")
PUBLIC = frozenset({"health", "webhook"})  # endpoint names served without a bearer token
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dqueue"'}


def create_app(engine: Engine, settings: config.Settings) -> Flask:
    """The app serving ``settings``' API on ``engine``; TokenError if a configured token is malformed."""
    web: WebSettings = settings.web
    app = Flask("dqueue.web")
    app.config["MAX_CONTENT_LENGTH"] = web.max_body  # werkzeug reads no more than this: 413
    app.extensions["dqueue"] = WebContext(engine, settings, web, Tokens.parse(web.tokens))
    errors.register(app)
    app.before_request(_begin)
    app.before_request(_limit_body)
    app.before_request(_authenticate)
    app.after_request(_log_request)
    routes.register(app)
    return app


def _begin() -> None:
    g.request_id = uuid.uuid4().hex[:12]
    g.started = time.monotonic()


def _limit_body() -> None:
    limit = context().web.max_body
    if request.content_length is not None and request.content_length > limit:
        fail(413, f"the request body is larger than {limit} bytes")


def _authenticate() -> None:
    if request.routing_exception is not None or request.endpoint in PUBLIC:
        return  # 404 and 405 are answered as they are; public endpoints need no token
    tokens = context().tokens
    if not tokens:
        fail(401, "this server has no API tokens configured ([web] tokens): every call is refused",
             CHALLENGE)
    if not tokens.accepts(bearer(request.headers.get("Authorization"))):
        fail(401, "a valid 'Authorization: Bearer <token>' header is required",
             {"WWW-Authenticate": 'Bearer realm="dqueue", error="invalid_token"'}
             if request.headers.get("Authorization") else CHALLENGE)


def _log_request(response: Response) -> Response:
    took = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    # The path only: a query string could carry a secret (masked anyway by the log filter).
    log.info("web request: %s %s %d %.1f ms request=%s", request.method, request.path,
             response.status_code, took, g.get("request_id", "-"))
    response.headers["X-Request-Id"] = g.get("request_id", "-")
    return response
