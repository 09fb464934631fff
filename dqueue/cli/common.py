"""What the click commands share: settings from the global options, the engine, output helpers."""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .. import config, jobs, logs, masking
from ..store import SchemaError, make_engine, migrate
from ..worker.monitor import db_error_line
from ..worker.supervisor import EXIT_CONFIG

F = TypeVar("F", bound=Callable[..., Any])
# Ids are BIGINT keys: a larger number is a typo, and the drivers raise OverflowError on it.
ROW_ID = click.IntRange(1, 2 ** 63 - 1)
LIMIT = click.IntRange(1, 2 ** 31 - 1)


@dataclass
class AppContext:
    settings: config.Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        """The engine; on SQLite it creates the file and its directory (``db init``, the demo)."""
        if self._engine is None:
            self._engine = make_engine(self.settings.resolved_database_url())
        return self._engine

    def existing_engine(self) -> Engine:
        """The engine of a database that exists: a missing SQLite file is an error, never created
        (a read-only command must not leave an empty database and its directories behind)."""
        if self._engine is None:
            try:
                self._engine = make_engine(self.settings.resolved_database_url(), create=False)
            except FileNotFoundError as exc:
                raise click.ClickException(str(exc)) from None
        return self._engine

    def checked_engine(self) -> Engine:
        """The engine of an existing database whose schema is current (a clear error otherwise)."""
        try:
            migrate.check(self.existing_engine())
        except SchemaError as exc:
            raise click.ClickException(str(exc)) from None
        return self.engine

    def add_imports(self, modules: tuple[str, ...]) -> None:
        """Import the job modules named after the command (``dqueue worker --import M``), as if
        they had come before it; the worker processes inherit them."""
        if modules:
            self.settings = self.settings.replace(imports=tuple(self.settings.imports) + modules)
            import_job_modules(modules)


class ConfigFailure(click.ClickException):
    """A bad setting in the config file or the environment: exit EX_CONFIG."""
    exit_code = EXIT_CONFIG


def settings_failure(exc: config.ConfigError) -> click.ClickException:
    """A bad option is a usage error (exit 2, as click's own); a bad config file or environment
    variable exits EX_CONFIG (78), which systemd's RestartPreventExitStatus does not restart."""
    if exc.source is not None and exc.source.kind is config.SourceKind.OPTION:
        return click.UsageError(str(exc))
    return ConfigFailure(str(exc))


def database_failure(exc: SQLAlchemyError, app: Any) -> click.ClickException:
    """A database that cannot be reached or used, in one line: the driver's own message and the
    URL without its password."""
    where = ""
    if isinstance(app, AppContext):
        where = " " + make_url(app.settings.resolved_database_url()).render_as_string(hide_password=True)
    return click.ClickException(masking.mask(f"database{where}: {db_error_line(exc)}"))


class CommandGroup(click.Group):
    """A command group whose commands end in a one-line error, not a traceback, on a bad setting
    (``Settings.replace`` of their options) or a database they cannot reach or use."""
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except config.ConfigError as exc:
            raise settings_failure(exc) from None
        except SQLAlchemyError as exc:
            raise database_failure(exc, ctx.obj) from None
        except ValueError as exc:
            if not str(exc).startswith("Invalid isoformat string"):
                raise
            # SQLite rows from before times were checked at enqueue (issue 7): years before 1000
            # were stored unpadded and cannot be read back.
            raise click.ClickException(
                f"a stored time cannot be read ({exc}); find the rows with SQL: SELECT id, run_at "
                "FROM delayed_jobs WHERE run_at NOT GLOB '[0-9][0-9][0-9][0-9]-*', then delete "
                "them (dqueue jobs delete ID) or set a valid run_at") from None


def import_option(func: F) -> F:
    """--import after the command too (``dqueue worker --import M``), where users type it."""
    return click.option("--import", "imports", multiple=True, metavar="MODULE",
                        help="Import MODULE to register its jobs (repeatable; as --import before "
                        "the command).")(func)


def import_job_modules(modules: tuple[str, ...]) -> None:
    try:
        jobs.import_modules(modules)
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None


def global_options(func: F) -> F:
    """--config, --database-url, --import and --log-level, accepted by every command group."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     envvar="DQUEUE_CONFIG", help="TOML config file [default: ./dqueue.toml if present]."),
        click.option("--database-url", help="SQLAlchemy URL, e.g. mysql+pymysql://user@host/db "
                     "[env DQUEUE_DATABASE_URL; default: sqlite:///var/dqueue.sqlite3]."),
        click.option("--import", "imports", multiple=True, metavar="MODULE",
                     help="Import MODULE to register its jobs (repeatable; adds to the config's 'imports')."),
        click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
                     case_sensitive=False), help="Log level [env DQUEUE_LOG_LEVEL; default INFO]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_context(config_file: str | None, database_url: str | None, imports: tuple[str, ...],
                 log_level: str | None) -> AppContext:
    try:
        settings = config.load(config_file, database_url=database_url, log_level=log_level)
        if imports:
            settings = settings.replace(imports=tuple(settings.imports) + tuple(imports))
    except config.ConfigError as exc:
        raise settings_failure(exc) from None
    masking.register_settings(settings)  # for this process and the workers it forks
    logs.setup(settings.log_level)
    import_job_modules(jobs.BUILTIN_MODULES + tuple(settings.imports))
    return AppContext(settings)


def _json_default(value: Any) -> Any:
    # Stored times are naive UTC: write them as ISO 8601 with a Z, so scripts need not guess.
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    return str(value)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=_json_default)
    sys.stdout.write("\n")
