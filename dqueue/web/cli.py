"""``dqueue web``: the HTTP API (sync, abandon, executions, webhook, health), served by waitress."""
from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from .. import config
from ..cli.common import AppContext, ConfigFailure
from ..cli.main import cli
from ..store import SchemaError, make_engine, migrate
from .auth import TokenError, Tokens
from .settings import PORT, THREADS, WebSettings

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("dqueue.web")


@cli.command("web")
@click.option("--host", help="Address to listen on [setting web_host; default 127.0.0.1].")
@click.option("--port", type=click.IntRange(int(PORT.low), int(PORT.high)),
              help="Port to listen on, 0 for any free one [setting web_port; default 8081].")
@click.option("--threads", type=click.IntRange(int(THREADS.low), int(THREADS.high)),
              help="Requests served at once [setting web_threads; default 8].")
@click.pass_obj
def web(app: AppContext, host: str | None, port: int | None, threads: int | None) -> None:
    """Serve the HTTP API until SIGTERM or SIGINT (then exit 0).

    \b
    POST /sync                      start the item sync (409 while one runs)
    PUT  /abandon/JOB_INSTANCE_ID   abandon its running execution
    GET  /executions/ID             an execution's status, times and exit message
    POST /sync/PROJECT_ID           sync one item now
    POST /webHook                   GitLab push events (X-Gitlab-Token)
    GET  /health                    no token: is the database there
    Every endpoint but the last two needs 'Authorization: Bearer TOKEN', a token of the
    [web] tokens setting (docs/web.md).
    """
    # Flask and waitress are imported here, not when the dqueue command starts.
    from .app import create_app
    from .server import ServeError, Server

    settings = app.settings.replace(web_host=host, web_port=port, web_threads=threads)
    settings_web: WebSettings = settings.web
    tokens = _tokens(settings_web)
    engine = _engine(settings, settings_web.threads)
    try:
        server = Server(create_app(engine, settings), settings_web.host, settings_web.port,
                        settings_web.threads, settings_web.max_body)
    except ServeError as exc:
        engine.dispose()
        raise click.ClickException(str(exc)) from None
    received = _stop_on_signals(server)
    log.info("dqueue web listening on %s (threads=%d, tokens=%d, max_body=%d)",
             " ".join(server.urls),
             settings_web.threads, len(tokens.digests), settings_web.max_body)
    _warn_about(tokens)
    try:
        server.serve()
    finally:
        engine.dispose()
    log.info("dqueue web stopped (%s)", ", ".join(signal.Signals(n).name for n in received) or "done")


def _tokens(web: WebSettings) -> Tokens:
    try:
        tokens = Tokens.parse(web.tokens)
    except TokenError as exc:
        raise ConfigFailure(f"setting 'web_tokens': {exc}") from None
    return tokens


def _warn_about(tokens: Tokens) -> None:
    if not tokens:
        log.warning("dqueue web: no API tokens configured ([web] tokens): every endpoint but "
                    "/health and /webHook answers 401")
    elif tokens.short:
        log.warning("dqueue web: %d plain token(s) shorter than 16 characters: easy to guess",
                    tokens.short)


def _engine(settings: config.Settings, threads: int) -> Engine:
    """An engine on the existing, current database, with a connection for every request thread."""
    try:
        engine = make_engine(settings.resolved_database_url(), create=False, timeouts=True,
                             pool_size=threads, max_overflow=2)
    except FileNotFoundError as exc:
        raise ConfigFailure(str(exc)) from None
    try:
        migrate.check(engine)
    except SchemaError as exc:
        engine.dispose()
        raise ConfigFailure(str(exc)) from None  # exit 78: a restart will not fix it
    return engine


def _stop_on_signals(server: Server) -> list[int]:
    """The signals received, filled in by the handlers.  A handler only sets the server's stop
    flag (no logging: it could interrupt the log handler's lock holder); the loop does the rest."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        server.stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return received
