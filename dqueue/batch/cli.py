"""``dqueue executions list|show|start`` and ``dqueue abandon``: batch executions from the shell."""
from __future__ import annotations

import datetime as dt
import sys
from typing import Any, Callable

import click

from ..cli.common import LIMIT, ROW_ID, AppContext, emit_json
from ..cli.main import cli
from . import launch
from .records import Execution

PARAM_TYPES: dict[str, Callable[[str], Any]] = {"string": str, "long": int, "double": float,
               "date": lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00")).replace(tzinfo=None)}


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _first_line(text: str | None, width: int = 70) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[:width - 3] + "..."


@cli.group("executions")
def executions() -> None:
    """Batch job executions (Spring Batch's batch_job_execution and its tables).

    \b
    dqueue executions list               the newest executions, as the runbook's history query
    dqueue executions show 42            one execution: steps, parameters, progress, exit message
    dqueue executions start NAME         start a registered batch job (refused while a singleton runs)
    dqueue abandon 1                     abandon the running execution of job instance 1
    The tables may also be read with SQL, e.g. select job_execution_id, job_instance_id,
    start_time, end_time, status, exit_message from batch_job_execution order by start_time desc.
    """


@executions.command("list")
@click.option("--name", help="Only executions of this batch job.")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def executions_list(app: AppContext, name: str | None, limit: int, as_json: bool) -> None:
    """The newest executions first: ids, times, status and the first line of the exit message."""
    found = launch.listing(app.checked_engine(), limit, name)
    if as_json:
        return emit_json([e.as_dict() for e in found])
    if not found:
        click.echo("executions: none")
        return
    click.echo(f"{'execution':>9} {'instance':>8}  {'start':19}  {'end':19}  {'status':9}  name / exit message")
    for e in found:
        click.echo(f"{e.job_execution_id:>9} {e.job_instance_id:>8}  {_when(e.start_time):19}  "
                   f"{_when(e.end_time):19}  {e.status or '-':9}  {e.name}  {_first_line(e.exit_message)}")


@executions.command("show")
@click.argument("execution_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def executions_show(app: AppContext, execution_id: int, as_json: bool) -> None:
    """EXECUTION_ID with its steps, parameters, progress and whole exit message."""
    found = launch.get(app.checked_engine(), execution_id)
    if found is None:
        raise click.ClickException(f"no job execution {execution_id}")
    if as_json:
        return emit_json(found.as_dict())
    for line in _describe(found):
        click.echo(line)


def _describe(e: Execution) -> list[str]:
    lines = [f"job execution {e.job_execution_id}: {e.name} (job instance {e.job_instance_id})  {e.status or '-'}"
             + (f"  stop requested: {e.stop_request}" if e.stop_request and e.running else ""),
             f"  created {_when(e.create_time)}  started {_when(e.start_time)}  ended {_when(e.end_time)}",
             f"  params: {', '.join(f'{k}={v}' for k, v in e.params.items()) or 'none'}"]
    if e.progress:
        p = e.progress
        of = f" of {p.get('total')}" if p.get("total") is not None else ""
        eta = f", ETA {p['eta']:.0f}s" if p.get("eta") is not None and e.running else ""
        lines.append(f"  progress: {p.get('done')}{of} done, {p.get('rate')}/s{eta}")
    lines.append(f"  exit code: {e.exit_code or '-'}")
    if e.exit_message:
        lines.append("  exit message:")
        lines += [f"    {line}" for line in e.exit_message.splitlines()]
    lines.append(f"  steps ({len(e.steps)}):" if e.steps else "  steps: none")
    for s in e.steps:
        counts = " ".join(f"{k.removesuffix('_count')}={v}" for k, v in s.counts.items() if v)
        lines.append(f"    #{s.step_execution_id} {s.step_name} {s.status or '-'}  {_when(s.start_time)} .. "
                     f"{_when(s.end_time)}  {counts}".rstrip())
    return lines


def _params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        name, _, kind = key.partition("(")
        kind = kind.removesuffix(")") or "string"
        if not sep or not name or kind not in PARAM_TYPES:
            raise click.BadParameter(f"{item!r}: expected key=value or key(long|double|date)=value",
                                     param_hint="--param")
        try:
            out[name] = PARAM_TYPES[kind](value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: {value!r} is not a {kind}", param_hint="--param") from None
    return out


@executions.command("start")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A job parameter (repeatable); KEY(long)=, KEY(double)=, KEY(date)= for typed ones. "
              "The parameters name the job instance, as in Spring Batch.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the refusal too, with exit 1).")
@click.pass_obj
def executions_start(app: AppContext, name: str, params: tuple[str, ...], as_json: bool) -> None:
    """Start the batch job NAME; a worker runs it.  Prints the execution id.

    Refused (exit 1) while an execution of a singleton job is STARTING, STARTED or STOPPING; the
    message names it and how to abandon it.
    """
    values = _params(params)
    try:
        found = launch.start(app.checked_engine(), app.settings, name, values)
    except launch.UnknownKind as exc:
        raise click.ClickException(str(exc)) from None
    except launch.AlreadyRunning as exc:
        if as_json:
            emit_json(exc.as_dict())
            sys.exit(1)
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None
    if as_json:
        return emit_json(found.as_dict())
    click.echo(f"started {name}: job execution {found.job_execution_id} (job instance {found.job_instance_id}), "
               f"{found.status}")


@cli.command("abandon")
@click.argument("job_instance_id", type=ROW_ID)
@click.option("--wait", type=click.FloatRange(0, 3600), default=10.0, show_default=True,
              help="Seconds to wait for a running worker to reach its next item and end the execution.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def abandon_command(app: AppContext, job_instance_id: int, wait: float, as_json: bool) -> None:
    """Abandon the running execution of JOB_INSTANCE_ID (the job_instance_id column).

    An execution nobody runs (not started yet, or its worker died) is ABANDONED at once; a running
    one is asked to stop and ends ABANDONED at its next item.  Exit 0 when it is ABANDONED or
    nothing was running (safe to repeat); exit 1 if it is still STOPPING after --wait seconds.
    """
    try:
        result = launch.abandon(app.checked_engine(), app.settings, job_instance_id, wait)
    except launch.UnknownInstance as exc:
        raise click.ClickException(f"{exc} (see 'dqueue executions list' for instance ids)") from None
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(result.message)
    if not result.settled:
        if not as_json:
            click.echo(f"error: job execution {result.execution_id} is still {result.status}", err=True)
        sys.exit(1)
