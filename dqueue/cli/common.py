"""What the click commands share: settings from the global options, the engine, output helpers."""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import click
from sqlalchemy import Engine

from .. import config, jobs, logs, masking
from ..store import SchemaError, make_engine, migrate

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    settings: config.Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.resolved_database_url())
        return self._engine

    def checked_engine(self) -> Engine:
        """The engine, after making sure the schema is current (a clear error otherwise)."""
        try:
            migrate.check(self.engine)
        except SchemaError as exc:
            raise click.ClickException(str(exc)) from None
        return self.engine


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
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if imports:
        settings = settings.replace(imports=tuple(settings.imports) + tuple(imports))
    masking.register_settings(settings)  # for this process and the workers it forks
    logs.setup(settings.log_level)
    try:
        jobs.import_modules(jobs.BUILTIN_MODULES + tuple(settings.imports))
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    return AppContext(settings)


def _json_default(value: Any) -> Any:
    # Stored times are naive UTC: write them as ISO 8601 with a Z, so scripts need not guess.
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    return str(value)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=_json_default)
    sys.stdout.write("\n")
