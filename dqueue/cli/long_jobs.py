"""``long_jobs status|drain|restart``: the maintenance routine of the long_jobs.dryad script."""
from __future__ import annotations

import dataclasses
from typing import Any

import click

from .. import flags
from ..store import inspect as store_inspect
from .common import AppContext, CommandGroup, emit_json, global_options, make_context


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@global_options
@click.option("--flag-dir", help="Where the markers live [env DQUEUE_FLAG_DIR; default var/flags].")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, database_url: str | None,
        imports: tuple[str, ...], log_level: str | None, flag_dir: str | None) -> None:
    """Drain long jobs before maintenance, then restart them.

    \b
    Before maintenance:  long_jobs drain; watch long_jobs status until nothing runs; stop.
    After maintenance:   long_jobs restart.
    drain creates the markers each capability registers (defer_jobs.txt for Zenodo copies,
    hold-submissions.txt for repository submissions) in the flag directory; long jobs that reach
    their turn while they exist are parked instead of run, and running ones finish.
    """
    app = make_context(config_file, database_url, imports, log_level)
    if flag_dir:
        app.settings = app.settings.replace(flag_dir=flag_dir)
    ctx.obj = app


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(app: AppContext, as_json: bool) -> None:
    """Whether the markers are set, jobs by queue and state, and what is running."""
    engine = app.checked_engine()
    stats = store_inspect.queue_stats(engine)
    running = store_inspect.list_jobs(engine, state="running", limit=100)
    registered = flags.markers()
    markers = {m.file: flags.is_set(app.settings.flag_dir, m.file) for m in registered}
    sections = {name: hook(engine) for name, hook in flags.status_hooks().items()}
    if as_json:
        emit_json({"flag_dir": app.settings.flag_dir, "markers": markers,
                   "queues": {q: _counts(c) for q, c in stats.queues.items()},
                   "total": _counts(stats.total), "running": [dataclasses.asdict(j) for j in running],
                   **sections})
        return
    click.echo(f"flag directory: {app.settings.flag_dir}")
    for m in registered:
        click.echo(f"  {m.file}: {'SET (draining): ' + m.parks if markers[m.file] else 'not set'}")
    t = stats.total
    click.echo(f"jobs: {t.ready} ready, {t.scheduled} scheduled, {t.running} running, {t.failed} failed")
    for job in running:
        click.echo(f"  running: id={job.id} {job.job or '?'} queue={job.queue} by {job.locked_by}")
    for name, section in sections.items():
        _print_section(name, section)


def _print_section(name: str, section: dict[str, object]) -> None:
    """A hook's section: its plain values on one line, a table of counts on a line of its own,
    a list (what is running) one item a line."""
    plain = {k: v for k, v in section.items() if not isinstance(v, (dict, list))}
    if plain:
        click.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in plain.items()))
    for key, value in section.items():
        if isinstance(value, dict):
            click.echo(f"{name} {key}: " + ", ".join(f"{v} {k}" for k, v in value.items()))
        elif isinstance(value, list):
            for item in value:
                shown = " ".join(f"{k}={v}" for k, v in item.items()) if isinstance(item, dict) else item
                click.echo(f"  {name} {key}: {shown}")


def _counts(counts: store_inspect.Counts) -> dict[str, Any]:
    return {**dataclasses.asdict(counts), "total": counts.total}


@cli.command()
@click.pass_obj
def drain(app: AppContext) -> None:
    """Create the markers: long jobs park themselves at their turn; running ones finish."""
    try:
        created = flags.drain(app.settings.flag_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot create the markers in {app.settings.flag_dir}: "
                                   f"{exc.strerror} ({exc.filename}); nothing is draining") from None
    for path in created:
        click.echo(f"created {path}")
    click.echo("draining: run 'long_jobs status' until nothing is running, then stop or deploy")


@cli.command()
@click.option("--all-hosts", is_flag=True, help="Also take over the held repository submissions of every "
              "other host (recorded under this host's name).")
@click.option("--from-host", metavar="HOST", help="Take over the held repository submissions of HOST "
              "instead of this host's.")
@click.pass_obj
def restart(app: AppContext, all_hosts: bool, from_host: str | None) -> None:
    """Remove the markers and re-enqueue the long jobs that were parked (safe to run twice).

    Held repository submissions belong to the host that held them: by default this host's are
    re-enqueued, oldest first; --from-host HOST or --all-hosts takes other hosts' over, and the
    new state rows name this host (no SQL edit of hostname needed).
    """
    if all_hosts and from_host:
        raise click.UsageError("--all-hosts and --from-host exclude each other")
    engine = app.checked_engine()
    try:
        removed = flags.clear(app.settings.flag_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot remove the markers in {app.settings.flag_dir}: "
                                   f"{exc.strerror} ({exc.filename}); still draining") from None
    click.echo(f"removed {', '.join(map(str, removed))}" if removed else "no markers were set")
    for name, hook in flags.restart_hooks().items():
        click.echo(f"{name}: {hook(engine)}")
    scope = flags.RestartScope(app.settings.hostname, None if all_hosts else (from_host or app.settings.hostname))
    for name, scoped in flags.scoped_restart_hooks().items():
        click.echo(f"{name}: {scoped(engine, scope)}")


def main() -> None:
    cli(prog_name="long_jobs")
