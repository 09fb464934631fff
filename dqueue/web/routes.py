"""The endpoints of issue 9 point 7: each parses its input, calls one function, answers JSON.

    POST /sync                      start the full item sync (409 while one runs)
    PUT  /abandon/<jobInstanceId>   abandon the running execution of that instance's job
    GET  /executions/<id>           one execution record
    POST /sync/<projectId>          sync one item now (no singleton check)
    POST /webHook                   GitLab push events (X-Gitlab-Token, not a bearer token)
    GET  /health                    the database answers and its schema is current (no token)
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from .. import masking
from ..batch import launch
from ..batch.status import RUNNING
from ..http import HttpError, Rejected
from ..itemsync import item, webhook
from ..itemsync.sync import JOB_NAME
from ..store import SchemaError, migrate
from ..worker.monitor import db_error_line
from .context import context
from .errors import fail

log = logging.getLogger("dqueue.web")
ID_MAX = 2 ** 63 - 1  # BIGINT keys


def register(app: Flask) -> None:
    app.add_url_rule("/sync", "sync", start_sync, methods=["POST"])
    app.add_url_rule("/abandon/<raw_id>", "abandon", abandon, methods=["PUT"])
    app.add_url_rule("/executions/<raw_id>", "execution", execution, methods=["GET"])
    app.add_url_rule("/sync/<raw_id>", "sync_item", sync_item, methods=["POST"])
    app.add_url_rule("/webHook", "webhook", receive_webhook, methods=["POST"])
    app.add_url_rule("/health", "health", health, methods=["GET"])


def parse_id(raw: str, what: str) -> int:
    """A path id as a BIGINT key; 400 for anything else (a drive-by 2^64 must not reach the driver)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= ID_MAX:
        fail(400, f"{what} must be an integer from 1 to {ID_MAX}", value=raw[:40])
    return int(raw)


def answer(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def start_sync() -> Response:
    ctx = context()
    try:
        started = launch.start(ctx.engine, ctx.settings, JOB_NAME)
    except launch.AlreadyRunning as exc:
        log.warning("web sync refused: %s", exc)
        return answer(exc.as_dict(), 409)
    log.info("web sync started: execution=%s instance=%s", started.job_execution_id, started.job_instance_id)
    return answer({"jobExecutionId": started.job_execution_id, "jobInstanceId": started.job_instance_id,
                   "name": started.name, "status": started.status.value if started.status else None,
                   "message": f"Started {started.name} successfully"})


def abandon(raw_id: str) -> Response:
    ctx = context()
    instance_id = parse_id(raw_id, "jobInstanceId")
    try:
        result = launch.abandon(ctx.engine, ctx.settings, instance_id, wait=ctx.web.abandon_wait)
    except launch.UnknownInstance:
        fail(404, f"no job instance {instance_id}", jobInstanceId=instance_id)
    body = result.as_dict()
    # Still running (STOPPING): its worker has not reached its next item; it ends ABANDONED when it does.
    return answer(body, 202 if body.get("status") in RUNNING else 200)


def execution(raw_id: str) -> Response:
    execution_id = parse_id(raw_id, "jobExecutionId")
    found = launch.get(context().engine, execution_id)
    if found is None:
        fail(404, f"no job execution {execution_id}", jobExecutionId=execution_id)
    return answer(found.as_dict())


def sync_item(raw_id: str) -> Response:
    ctx = context()
    project_id = parse_id(raw_id, "projectId")
    try:
        result = item.sync_one(ctx.engine, ctx.settings, project_id)
    except item.NotConfigured as exc:
        fail(503, str(exc), projectId=project_id)
    except item.ItemBusy as exc:
        fail(409, str(exc), projectId=project_id)
    except HttpError as exc:
        # GitLab refused (a 4xx other than 404) or did not answer in time: not the caller's fault.
        log.warning("web item sync failed: project=%s: %s", project_id, exc)
        fail(502, masking.mask(f"GitLab {'refused' if isinstance(exc, Rejected) else 'failed'}: {exc}"),
             projectId=project_id)
    log.info("web item synced: project=%s %s", project_id, result.message())
    return answer(_camel(result.as_dict()))


def receive_webhook() -> Response:
    ctx = context()
    body = request.get_data(cache=False)  # at most max_body bytes, or werkzeug's 413
    try:
        result = webhook.accept_push(ctx.engine, ctx.settings, dict(request.headers), body)
    except webhook.WebhookUnauthorized as exc:
        log.warning("web webhook refused: %s", exc)
        fail(401, "a valid X-Gitlab-Token header is required")
    except webhook.BadWebhook as exc:
        fail(400, str(exc))
    return answer(_camel(result.as_dict()))


def health() -> Response:
    try:
        migrate.check(context().engine)
    except SchemaError:
        return answer({"status": "DOWN", "database": "schema not current"}, 503)
    except SQLAlchemyError as exc:
        # The caller is not authenticated: the reason goes to the log, never the URL or the driver's text.
        log.warning("web health: database unreachable: %s", db_error_line(exc))
        return answer({"status": "DOWN", "database": "unreachable"}, 503)
    return answer({"status": "UP", "database": "UP"})


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    """camelCase keys, as the execution records' (``project_id`` -> ``projectId``)."""
    def key(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)
    return {key(k): v for k, v in fields.items()}
