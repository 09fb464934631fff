"""The ``dqueue`` command: thin click commands that parse options, call one function, print."""
from __future__ import annotations

import datetime as dt
import json
import sys

import click

from .. import client
from ..store import SchemaError, migrate
from ..worker import run_pool
from .common import AppContext, CommandGroup, emit_json, global_options, import_option, make_context

PRIORITY = click.IntRange(client.PRIORITY_MIN, client.PRIORITY_MAX)  # the INT column's range


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@global_options
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, database_url: str | None,
        imports: tuple[str, ...], log_level: str | None) -> None:
    """dqueue: a database-backed delayed-job queue (the delayed_jobs table, MariaDB or SQLite).

    Settings come from --config FILE (TOML), DQUEUE_* environment variables and these options;
    with none, the database is the SQLite file var/dqueue.sqlite3.  Exit codes: 1 an error,
    2 a bad option or argument, 78 a bad setting in the config file or environment.
    """
    ctx.obj = make_context(config_file, database_url, imports, log_level)


@cli.group()
def db() -> None:
    """Create, upgrade and inspect the schema."""


@db.command("init")
@click.pass_obj
def db_init(app: AppContext) -> None:
    """Create the tables or upgrade them to this version's schema. Safe to run again."""
    try:
        before, after = migrate.upgrade(app.engine)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    url = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"schema already at revision {after} ({url})")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to revision {after} ({url})")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def db_status(app: AppContext, as_json: bool) -> None:
    """Show the schema revision; exit 1 if 'dqueue db init' is needed."""
    current, head = migrate.current_revision(app.existing_engine()), migrate.head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        click.echo(f"current revision: {current or 'none'}; this dqueue needs: {head}")
    sys.exit(0 if current == head else 1)


@db.command("schema")
@click.option("--dialect", type=click.Choice(["mysql", "sqlite"]), default="mysql", show_default=True,
              help="mysql is also MariaDB's.")
def db_schema(dialect: str) -> None:
    """Print the DDL that 'db init' runs on an empty database (what sql/*.sql hold)."""
    click.echo(migrate.schema_file_text(dialect), nl=False)


def parse_run_at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-23T14:00:00Z)",
                                 param_hint="--run-at") from None
    try:
        return client.to_utc_naive(when)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--run-at") from None


def read_args(value: str) -> dict[str, object]:
    """--args: a JSON object given inline, in a file (@FILE) or on standard input (-), for
    payloads beyond the shell's argument limit."""
    source = value
    try:
        if value == "-":
            source = "standard input"
            value = sys.stdin.read()
        elif value.startswith("@"):
            source = value[1:]
            with open(source, encoding="utf-8") as fh:
                value = fh.read()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror}", param_hint="--args") from None
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{source} is not UTF-8 text: {exc.reason}", param_hint="--args") from None
    try:
        args = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--args") from None
    except RecursionError:
        raise click.BadParameter("JSON nested too deeply", param_hint="--args") from None
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"path\": \"/tmp/x\"}'", param_hint="--args")
    return args


@cli.command()
@click.argument("name")
@click.option("--args", "args_json", default="{}", show_default=True, metavar="JSON|@FILE|-",
              help="Job arguments, a JSON object: inline, from FILE (@FILE) or from standard input (-).")
@click.option("--queue", help="Queue name [default: the job's registered queue].")
@click.option("--priority", type=PRIORITY, help="Lower runs first [default: the job's registered priority].")
@click.option("--run-at", help="Earliest start, ISO 8601; without a zone it is UTC [default: now].")
@click.option("--force", is_flag=True, help="Enqueue even if NAME is not registered in this process.")
@click.option("--json", "as_json", is_flag=True, help="Print {\"id\": …} as JSON.")
@import_option
@click.pass_obj
def enqueue(app: AppContext, name: str, args_json: str, queue: str | None, priority: int | None,
            run_at: str | None, force: bool, as_json: bool, imports: tuple[str, ...]) -> None:
    """Add job NAME to the queue and print its id.

    \b
    dqueue enqueue mail.send --import myapp.jobs --args '{"to": "a@example.org"}'
    dqueue enqueue big.job --args @payload.json      # or: ... | dqueue enqueue big.job --args -
    """
    app.add_imports(imports)
    args = read_args(args_json)
    when = parse_run_at(run_at)
    app.checked_engine()
    try:
        job_id = client.Client(app.settings, engine=app.engine).enqueue(
            name, args, queue=queue, priority=priority, run_at=when, check=not force)
    except client.UnknownJobError as exc:
        raise click.ClickException(f"{exc}; load its module with --import MODULE, or use --force") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json({"id": job_id})
    else:
        click.echo(job_id)


@cli.command()
@click.option("-n", "--number", "count", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes under one supervisor.")
@click.option("--queues", "--queue", "queues", help="Comma-separated queues to work [default: all].")
@click.option("--min-priority", type=PRIORITY, help="Only jobs with priority >= this.")
@click.option("--max-priority", type=PRIORITY, help="Only jobs with priority <= this.")
@click.option("--sleep-delay", type=float,
              help="Seconds between polls when idle [default 0.07]; a local enqueue wakes workers at once.")
@click.option("--batch-size", type=click.IntRange(1, 1000), help="Jobs claimed per poll [default 10].")
@click.option("--grace-period", type=float, help="Seconds a running job gets to finish on SIGTERM [default 30].")
@click.option("--burst", is_flag=True, help="Run what is runnable now, then exit 0 (future jobs do not hold it).")
@import_option
@click.pass_obj
def worker(app: AppContext, count: int, queues: str | None, min_priority: int | None,
           max_priority: int | None, sleep_delay: float | None, batch_size: int | None,
           grace_period: float | None, burst: bool, imports: tuple[str, ...]) -> None:
    """Run a supervisor and N worker processes in the foreground.

    SIGTERM, SIGINT or SIGHUP: stop claiming, let running jobs finish within the grace period,
    hand back the rest, exit 0.  A worker that dies is replaced; a job that kills its worker
    only uses up its own attempts.  The supervisor exits 1 if workers keep dying for no job, or
    on a permission or schema error (its worker exits 78).  Workers whose supervisor dies stop.
    """
    if min_priority is not None and max_priority is not None and min_priority > max_priority:
        raise click.UsageError(f"--min-priority {min_priority} is above --max-priority {max_priority}: "
                               "no job could ever be claimed")
    app.add_imports(imports)
    settings = app.settings.replace(sleep_delay=sleep_delay, batch_size=batch_size,
                                    grace_period=grace_period)
    app.existing_engine()  # a missing SQLite file is an error here, not an empty database
    queue_list = tuple(q.strip() for q in (queues or "").split(",") if q.strip())
    try:
        code = run_pool(settings, count, queue_list, min_priority, max_priority, burst)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def main() -> None:
    from ..batch import cli as batch_cli  # noqa: F401
    from ..itemsync import cli as itemsync_cli  # noqa: F401
    from ..repository import cli as repository_cli  # noqa: F401
    from ..web import cli as web_cli  # noqa: F401
    from ..zenodo import cli as zenodo_cli  # noqa: F401
    from . import demo, inspect, resource  # noqa: F401  (they add their commands to the group)
    cli(prog_name="dqueue")
