"""``dqueue jobs list|show|retry|delete|stats`` and ``dqueue workers``: look at the queue, repair it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ..store import inspect as store
from .common import LIMIT, ROW_ID, AppContext, emit_json
from .main import cli

F = TypeVar("F", bound=Callable[..., Any])
JOB_ID = ROW_ID
STATE_HELP = """\b
States, judged by the database clock ("now"):
  failed     failed_at is set: out of attempts, or a permanent error
  running    not failed, locked_at is set: a worker holds the job
  ready      not failed, not locked, run_at <= now: a worker may claim it
  scheduled  not failed, not locked, run_at > now: waiting for its time or a retry"""


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


@cli.group("jobs", help=f"Inspect and repair the work queue (the delayed_jobs table).\n\n{STATE_HELP}")
def jobs_group() -> None:
    pass


@jobs_group.command("list", epilog=STATE_HELP)
@click.option("--queue", help="Only this queue.")
@click.option("--state", type=click.Choice(store.STATES), help="Only jobs in this state.")
@click.option("--job", "job_name", metavar="NAME", help="Only jobs whose handler names job NAME.")
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="At most N jobs.")
@json_option
@click.pass_obj
def list_(app: AppContext, queue: str | None, state: str | None, job_name: str | None,
          limit: int, as_json: bool) -> None:
    """List jobs, one line each; JOB is ? when the handler is malformed.

    \b
    Order: without --state, newest first (highest id). With --state:
      ready      in the order workers claim them (priority, then run_at)
      scheduled  next due first
      running    longest running first
      failed     latest failure first
    """
    found = store.list_jobs(app.checked_engine(), queue, state, job_name, limit)
    if as_json:
        return emit_json(([dataclasses.asdict(j) for j in found]))
    if not found:
        return click.echo("no jobs")
    click.echo(_table(["ID", "QUEUE", "PRI", "STATE", "ATT", "JOB", "RUN_AT (UTC)", "LOCKED_BY", "ERROR"],
                      [[j.id, j.queue, j.priority, j.state, j.attempts, j.job or "?", _ts(j.run_at),
                        j.locked_by or "", _clip(j.error or "", 60)] for j in found]))


@jobs_group.command("show")
@click.argument("job_id", metavar="ID", type=JOB_ID)
@json_option
@click.pass_obj
def show(app: AppContext, job_id: int, as_json: bool) -> None:
    """Show every column of job ID, its arguments and its full last error; exit 1 if there is none."""
    job = store.get_job(app.checked_engine(), job_id)
    if job is None:
        raise click.ClickException(f"no job with id {job_id} (finished and deleted, or never existed)")
    if as_json:
        return emit_json(({**job.columns, "state": job.state, "now": job.now, "job": job.job,
                                 "args": job.args, "handler_error": job.handler_error}))
    cols = job.columns
    for name in ("id", "queue", "priority", "attempts"):
        click.echo(f"{name:<11} {cols[name]}")
    click.echo(f"{'state':<11} {job.state} (database clock {_ts(job.now, micro=True)} UTC)")
    for name in ("run_at", "locked_at", "locked_by", "failed_at", "created_at", "updated_at"):
        value = _ts(cols[name], micro=True) if isinstance(cols[name], dt.datetime) else cols[name]
        click.echo(f"{name:<11} {'-' if value is None else value}")
    if job.handler_error is None:
        click.echo(f"{'job':<11} {job.job}")
        click.echo("args:\n" + _indent(json.dumps(job.args, indent=2, sort_keys=True)))
    else:
        click.echo(f"{'job':<11} ? ({job.handler_error})")
        click.echo("handler:\n" + _indent(cols["handler"] or ""))
    click.echo("last_error:" + ("\n" + _indent(cols["last_error"]) if cols["last_error"] else " -"))


@jobs_group.command("retry", epilog=STATE_HELP)
@click.argument("job_ids", metavar="[ID]...", nargs=-1, type=JOB_ID)
@click.option("--all-failed", is_flag=True, help="Retry every failed job instead of the IDs given.")
@click.option("--queue", help="With --all-failed: only the failed jobs of this queue.")
@json_option
@click.pass_obj
def retry(app: AppContext, job_ids: tuple[int, ...], all_failed: bool, queue: str | None,
          as_json: bool) -> None:
    """Make failed or scheduled jobs runnable now.

    Sets attempts=0, failed_at=NULL and run_at=now; last_error is kept for history.  Running
    (locked) jobs are refused, ready jobs are left alone.  Exit 1 if any ID was refused or is
    not found (the others are still retried).
    """
    if bool(job_ids) == all_failed:
        raise click.UsageError("give job IDs or --all-failed, not both")
    if queue is not None and not all_failed:
        raise click.UsageError("--queue goes with --all-failed")
    engine = app.checked_engine()
    if all_failed:
        out = store.Outcome(done=store.retry_failed(engine, queue))
    else:
        out = store.retry_jobs(engine, job_ids)
    _report(out, "retried", as_json, "retry it once it has finished or failed")


@jobs_group.command("delete")
@click.argument("job_ids", metavar="ID...", nargs=-1, type=JOB_ID, required=True)
@click.option("--force", is_flag=True, help="Delete running jobs too (see above).")
@json_option
@click.pass_obj
def delete(app: AppContext, job_ids: tuple[int, ...], force: bool, as_json: bool) -> None:
    """Delete jobs, which cancels them.  Exit 1 if any ID was refused or is not found.

    A running (locked) job is refused unless --force.  With --force its row goes at once, but the
    job's code keeps running to the end: the worker then finds its lock gone and records no
    result, so a failure is neither retried nor kept.
    """
    out = store.delete_jobs(app.checked_engine(), job_ids, force)
    _report(out, "deleted", as_json, "use --force to delete it anyway: its worker will find its lock "
            "gone and not record the result")


def _report(out: store.Outcome, verb: str, as_json: bool, running_hint: str) -> None:
    if as_json:
        data = {verb: out.done, "running": out.running, "missing": out.missing}
        emit_json(data | ({"ready": out.ready} if verb == "retried" else {}))
    else:
        click.echo(f"{verb} {_count(out.done)}" + (f": {_ids(out.done)}" if out.done else ""))
        if out.ready:
            click.echo(f"left alone, already ready: {_ids(out.ready)}")
        for job_id in out.running:
            click.echo(f"refused job {job_id}: it is running (a worker holds its lock); "
                       f"{running_hint}", err=True)
        for job_id in out.missing:
            click.echo(f"job {job_id}: no such job", err=True)
    sys.exit(1 if out.running or out.missing else 0)


@jobs_group.command("stats", epilog=STATE_HELP)
@json_option
@click.pass_obj
def stats(app: AppContext, as_json: bool) -> None:
    """Count jobs by queue and state, with the age of the oldest ready job.

    The age is seconds from that job's run_at to now, by the database clock: how long work
    has waited for a free worker.
    """
    result = store.queue_stats(app.checked_engine())
    if as_json:
        return emit_json(({"now": result.now, "total": _counts(result.total),
                                 "queues": {q: _counts(c) for q, c in result.queues.items()}}))
    rows = [[q, *_stat_row(c)] for q, c in result.queues.items()]
    click.echo(_table(["QUEUE", "READY", "SCHEDULED", "RUNNING", "FAILED", "TOTAL", "OLDEST READY"],
                      [*rows, ["(all)", *_stat_row(result.total)]]))


def _counts(c: store.Counts) -> dict[str, Any]:
    return {**dataclasses.asdict(c), "total": c.total}


def _stat_row(c: store.Counts) -> list[Any]:
    age = "-" if c.oldest_ready_age is None else f"{c.oldest_ready_age:.1f}s"
    return [c.ready, c.scheduled, c.running, c.failed, c.total, age]


@cli.command()
@json_option
@click.pass_obj
def workers(app: AppContext, as_json: bool) -> None:
    """List the registered worker processes, their heartbeat age and how many jobs each holds.

    A process whose heartbeat is older than stale_after is presumed dead; the reaper removes it
    and hands its jobs back.
    """
    found = store.list_workers(app.checked_engine())
    if as_json:
        return emit_json((found))
    if not found:
        return click.echo("no worker processes registered")
    click.echo(_table(["ID", "KIND", "HOST", "PID", "QUEUES", "STARTED (UTC)", "HEARTBEAT", "RUNNING"],
                      [[p["id"], p["kind"], p["hostname"], p["pid"], p["queues"] or "(all)",
                        _ts(p["started_at"]), f"{p['heartbeat_age']:.1f}s ago", p["running_jobs"]]
                       for p in found]))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    right = [bool(rows) and all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]
    cells = [list(headers)] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(v.rjust(w) if r else v.ljust(w)
                       for v, w, r in zip(row, widths, right, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def _ts(value: dt.datetime, micro: bool = False) -> str:
    return value.isoformat(" ", "microseconds" if micro else "seconds")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _count(ids: list[int]) -> str:
    return f"{len(ids)} job" + ("" if len(ids) == 1 else "s")


def _ids(ids: list[int], shown: int = 20) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(map(str, ids[:shown])) + more
