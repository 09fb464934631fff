"""``dqueue sync``: start the full item sync (and watch it), or sync one item now."""
from __future__ import annotations

import sys
import time
from typing import Any

import click

from .. import http, masking
from ..batch import launch
from ..cli.common import ROW_ID, AppContext, emit_json
from ..cli.main import cli
from . import item
from .sync import JOB_NAME

POLL = 0.5  # seconds between reads of the execution while waiting
LINE_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal
BAR = 30


@cli.command("sync")
@click.option("--wait", is_flag=True, help="Wait for the sync to end, with a progress bar on stderr; exit 0 only "
              "if it COMPLETED.")
@click.option("--item", "project_id", type=ROW_ID, metavar="PROJECT_ID",
              help="Sync this one GitLab project now (webhook, head commit), without starting the full sync.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the execution, or the item's result).")
@click.pass_obj
def sync_command(app: AppContext, wait: bool, project_id: int | None, as_json: bool) -> None:
    """Start the item sync (itemSynchronizationJob) and print its job execution id.

    \b
    dqueue sync                 start it; a worker runs it (refused while one runs)
    dqueue sync --wait          start it and wait: progress on stderr, the exit message at the end
    dqueue sync --item 1234     sync GitLab project 1234 now (no singleton check)
    dqueue executions show ID   the execution's status, counts and exit message
    dqueue abandon INSTANCE_ID  abandon a running execution (the refusal names the instance)
    """
    settings = app.settings
    masking.register_settings(settings)
    missing = settings.gitlab.missing()
    if missing:
        raise click.ClickException(str(item.NotConfigured(missing)))
    if project_id is not None:
        if wait:
            raise click.UsageError("--wait applies to the full sync, not to --item (which waits anyway)")
        return _sync_item(app, project_id, as_json)
    engine = app.checked_engine()
    try:
        execution = launch.start(engine, settings, JOB_NAME)
    except launch.AlreadyRunning as exc:
        if as_json:
            emit_json(exc.as_dict())
            sys.exit(1)
        raise click.ClickException(str(exc)) from None
    started = execution.as_dict()
    if not wait:
        if as_json:
            return emit_json({k: started[k] for k in ("jobExecutionId", "name", "status")})
        click.echo(f"Started {JOB_NAME} successfully.  Job execution id: {started['jobExecutionId']} "
                   f"(job instance id {started['jobInstanceId']})")
        return
    if not as_json:
        click.echo(f"Started {JOB_NAME}.  Job execution id: {started['jobExecutionId']}; waiting "
                   "(Ctrl-C stops waiting, not the sync)")
    _wait(app, int(started["jobExecutionId"]), as_json)


def _sync_item(app: AppContext, project_id: int, as_json: bool) -> None:
    engine = app.checked_engine()
    try:
        result = item.sync_one(engine, app.settings, project_id)
    except item.ItemBusy as exc:
        raise click.ClickException(str(exc)) from None
    except http.HttpError as exc:
        raise click.ClickException(f"GitLab: {masking.mask(str(exc))}") from None
    if as_json:
        return emit_json(result.as_dict())
    click.echo(result.message())


def _wait(app: AppContext, execution_id: int, as_json: bool) -> None:
    engine = app.engine
    tty = sys.stderr.isatty()
    last_line, shown = 0.0, ""
    try:
        while True:
            execution = launch.get(engine, execution_id)
            if execution is None:
                raise click.ClickException(f"job execution {execution_id} no longer exists (deleted by hand?)")
            data = execution.as_dict()
            if data["status"] not in ("STARTING", "STARTED", "STOPPING"):
                break
            line = render(data.get("progress"), data["status"])
            now = time.monotonic()
            if tty:
                click.echo("\r" + line.ljust(len(shown)), nl=False, err=True)
                shown = line
            elif line != shown and now - last_line >= LINE_EVERY:
                click.echo(line, err=True)
                shown, last_line = line, now
            time.sleep(POLL)
    except KeyboardInterrupt:
        click.echo(f"\nstopped waiting; the sync goes on (job execution id {execution_id})", err=True)
        sys.exit(130)
    if tty and shown:
        click.echo("\r" + render(data.get("progress"), data["status"]).ljust(len(shown)), err=True)
    _finish(data, as_json)


def _finish(data: dict[str, Any], as_json: bool) -> None:
    ok = data["status"] == "COMPLETED"
    if as_json:
        emit_json(data)
    else:
        click.echo(f"Job execution {data['jobExecutionId']} {data['status']}: {data.get('exitMessage') or ''}",
                   err=not ok)
    if not ok:
        sys.exit(1)


def render(progress: dict[str, Any] | None, status: str) -> str:
    """One line: a bar (when the total is known), items done of total, rate and ETA."""
    if not progress:
        return f"{status.lower()}: waiting for a worker / getting item bank ids"
    done, total = int(progress.get("done") or 0), progress.get("total")
    rate = float(progress.get("rate") or 0.0)
    counts = ", ".join(f"{progress[k]} {label}" for k, label in (("hooks_added", "webhooks added"),
                                                                   ("updated", "updated"), ("deleted", "deleted"),
                                                                   ("failed", "failed")) if progress.get(k))
    tail = f"  ({counts})" if counts else ""
    if total is None:
        return f"[{'?' * BAR}] {done} items (listing), {rate:.1f}/s, ETA unknown{tail}"
    total = int(total)
    filled = BAR if total <= 0 else min(BAR, BAR * done // total)
    eta = progress.get("eta")
    eta_text = "unknown" if eta is None else _duration(float(eta))
    return f"[{'#' * filled}{'-' * (BAR - filled)}] {done}/{total} items, {rate:.1f}/s, ETA {eta_text}{tail}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
