"""``delayed_job start|stop|restart|status|run``: the old bin/delayed_job, on dqueue's supervisor.

One supervisor per pidfile (``<pid-dir>/delayed_job.pid``) runs N workers.  ``run`` is the
foreground mode systemd uses; ``start`` daemonises.  Whether it runs is the pidfile's lock,
held by the supervisor and inherited by its workers (pidfile.py), never the pid in the file.
Exit codes of ``status`` follow LSB: 0 running (also while only the workers of a killed
supervisor remain), 1 dead but the pidfile is left behind, 3 not running.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from .. import daemon, pidfile
from ..config import ConfigError, Settings
from ..store import SchemaError, processes
from ..worker import run_pool
from ..worker.supervisor import EXIT_CONFIG
from .common import AppContext, emit_json, global_options, make_context, settings_failure

log = logging.getLogger("dqueue.delayed_job")
F = TypeVar("F", bound=Callable[..., Any])

STATUS_RUNNING, STATUS_DEAD_PIDFILE, STATUS_NOT_RUNNING = 0, 1, 3  # LSB init-script codes
PRIORITY = click.IntRange(-(2 ** 31), 2 ** 31 - 1)  # the INT column's range: more crashed the workers
TIMEOUT = click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait for running "
                       "jobs to finish before SIGKILL [default: grace_period + kill_after + 10].")


class OptionsFirstGroup(click.Group):
    """Also accept options before the command (``delayed_job -n 2 start``), as the Ruby script did."""
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] not in ("-h", "--help"):
            for i, arg in enumerate(args):
                if arg in self.commands:
                    args = [arg, *args[:i], *args[i + 1:]]
                    break
        return super().parse_args(ctx, args)


def common_options(ignored: bool = False) -> Callable[[F], F]:
    """Options every command accepts, so deploy scripts can pass the same ones to each.

    ``stop`` and ``status`` ignore the worker options: with one pidfile whatever -n is, the
    mismatched -n that broke delayed_job's stop (DJ#798) cannot matter.
    """
    note = " Ignored by this command." if ignored else ""
    options = [
        click.option("-n", "--number", "count", type=click.IntRange(1, 256), default=1, show_default=True,
                     help="Worker processes under the one supervisor." + note),
        click.option("--queues", "--queue", "queues", help="Comma-separated queues [default: all]." + note),
        click.option("--min-priority", type=PRIORITY, help="Only jobs with priority >= this." + note),
        click.option("--max-priority", type=PRIORITY, help="Only jobs with priority <= this." + note),
        click.option("--sleep-delay", type=float, help="Seconds between polls when idle." + note),
        click.option("--pid-dir", type=click.Path(file_okay=False),
                     help="Where delayed_job.pid lives [setting pid_dir; default var/run]."),
        click.option("--log-dir", type=click.Path(file_okay=False),
                     help="Where 'start' writes delayed_job.log [setting log_dir; default var/log]."),
    ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return global_options(func)
    return decorate


@dataclass
class Invocation:
    app: AppContext
    count: int
    queues: tuple[str, ...]
    min_priority: int | None
    max_priority: int | None

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def pidfile(self) -> Path:
        return Path(self.settings.pid_dir).absolute() / daemon.PIDFILE_NAME

    @property
    def logfile(self) -> Path:
        return Path(self.settings.log_dir).absolute() / daemon.LOGFILE_NAME

    def serve(self) -> int:
        """Run the supervisor until it is stopped; its exit code."""
        try:
            return run_pool(self.settings, self.count, self.queues, self.min_priority, self.max_priority)
        except SchemaError as exc:
            log.error("delayed_job.cannot_start %s", exc)
            return EXIT_CONFIG  # systemd's RestartPreventExitStatus: a restart will not fix it


def prepare(opts: dict[str, Any]) -> Invocation:
    app = make_context(opts["config_file"], opts["database_url"], opts["imports"], opts["log_level"])
    try:
        app.settings = app.settings.replace(pid_dir=opts["pid_dir"], log_dir=opts["log_dir"],
                                            sleep_delay=opts["sleep_delay"])
    except ConfigError as exc:
        raise settings_failure(exc) from None  # exit 2 as click's own bad options
    queues = tuple(q.strip() for q in (opts["queues"] or "").split(",") if q.strip())
    return Invocation(app, opts["count"], queues, opts["min_priority"], opts["max_priority"])


@click.group(cls=OptionsFirstGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                      "max_content_width": 100})
def cli() -> None:
    """Run dqueue workers as delayed_job did: start|stop|restart|status|run.

    One supervisor and its N workers per pidfile (<pid-dir>/delayed_job.pid, whatever -n is).
    Stopping lets running jobs finish within the grace period; nothing is killed after a fixed
    20 s.  Settings: DQUEUE_* variables or --config.  Options may come before the command.
    """


@cli.command()
@common_options()
def run(**opts: Any) -> None:
    """Run in the foreground, logging to stderr (what systemd uses).

    SIGTERM or SIGINT: running jobs finish within the grace period, then exit 0.  Writes the
    pidfile too, so 'status' and 'stop' work and a 'start' beside it is refused.  Exits 78
    if the schema needs 'dqueue db init'.
    """
    inv = prepare(opts)
    try:
        lock = pidfile.acquire(inv.pidfile, os.getpid())
    except pidfile.AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    try:
        code = inv.serve()
    finally:
        lock.release()
    sys.exit(code)


@cli.command()
@common_options()
def start(**opts: Any) -> None:
    """Start the supervisor and N workers as a daemon; return once they are up.

    Logs go to <log-dir>/delayed_job.log.  Refused (exit 1) if one is already running on this
    pidfile, or workers of a killed one still run ('stop' ends them).  If the daemon dies
    while starting, prints the end of its log and exits 1.
    """
    do_start(prepare(opts))


def do_start(inv: Invocation) -> None:
    state = pidfile.read_state(inv.pidfile)
    if state.orphans:
        raise click.ClickException(str(pidfile.AlreadyRunning(state.pid, inv.pidfile, state.holders)))
    if state.running:
        raise click.ClickException(f"delayed_job is already running (pid {state.pid}, pidfile "
                                   f"{inv.pidfile}); use 'delayed_job restart' to replace it")
    inv.app.checked_engine()  # a missing schema is an immediate error, not a line in the log
    inv.app.engine.dispose()  # the daemon must not inherit pooled connections
    for folder in (inv.pidfile.parent, inv.logfile.parent):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create {folder}: {exc.strerror}") from None
    try:
        pid = daemon.start_daemon(inv.serve, inv.pidfile, inv.logfile, inv.settings.log_level)
    except (daemon.StartFailed, OSError) as exc:
        raise click.ClickException(f"delayed_job did not start: {exc}") from None
    workers = wait_for_workers(inv, pid)
    click.echo(f"delayed_job started (pid {pid}) with {len(workers)} of {inv.count} workers "
               f"registered; pidfile {inv.pidfile}, log {inv.logfile}")


@cli.command()
@TIMEOUT
@common_options(ignored=True)
def stop(timeout: float | None, **opts: Any) -> None:
    """Stop the daemon: SIGTERM, then wait for running jobs to finish.

    Also stops the workers of a supervisor that was killed.  Whatever still runs after
    --timeout is killed (SIGKILL; the killed jobs are handed back).  Exits 0 once no process
    of the daemon is left, or if it was not running (a stale pidfile is removed); 1 if a
    process survives even SIGKILL.
    """
    if not do_stop(prepare(opts), timeout):
        sys.exit(1)


def do_stop(inv: Invocation, timeout: float | None) -> bool:
    """Stop every process of the daemon; False if one is still running after SIGKILL."""
    state = pidfile.read_state(inv.pidfile)
    if not state.exists:
        click.echo(f"delayed_job is not running (no pidfile {inv.pidfile})")
        return True
    if state.stale:
        if pidfile.remove_stale(inv.pidfile):
            click.echo(f"delayed_job is not running; removed the stale pidfile {inv.pidfile} (pid {state.pid})")
            return True
        state = pidfile.read_state(inv.pidfile)  # a daemon started just now
    s = inv.settings
    limit = timeout if timeout is not None else s.grace_period + s.kill_after + 10
    if state.supervisor_alive:
        click.echo(f"stopping delayed_job (pid {state.pid}); running jobs get up to {s.grace_period:g} s")
    else:
        click.echo(f"stopping the workers (pids {pids(state.holders)}) of delayed_job (pid {state.pid}), "
                   f"whose supervisor is gone; running jobs get up to {s.grace_period:g} s")
    try:
        result = daemon.stop_daemon(inv.pidfile, limit)
    except PermissionError as exc:
        raise click.ClickException(f"cannot signal delayed_job's processes ({exc.strerror}): run 'stop' "
                                   f"as the daemon's user or root") from None
    if result.killed:
        click.echo(f"killed pids {pids(result.killed)} (SIGKILL): still running {limit:g} s after "
                   f"SIGTERM; their jobs go back to the queue (at the next start on this host, or "
                   f"after stale_after)", err=True)
    if not result.done and not result.left:
        click.echo(f"delayed_job is still running, but its processes cannot be seen from here (run "
                   f"'stop' as the daemon's user or root); pidfile {inv.pidfile}", err=True)
        return False
    if not result.done:
        click.echo(f"delayed_job is still running (pids {pids(result.left)}) even after SIGKILL; "
                   f"see 'ps -o pid,stat,cmd -p {pids(result.left)}'", err=True)
        return False
    pidfile.remove_stale(inv.pidfile)  # after SIGKILL nobody else removes it
    click.echo(f"delayed_job stopped (pid {state.pid}) in {result.seconds:.1f} s")
    return True


def pids(numbers: tuple[int, ...]) -> str:
    return ", ".join(str(n) for n in numbers) or "unknown"


@cli.command()
@TIMEOUT
@common_options()
def restart(timeout: float | None, **opts: Any) -> None:
    """Stop the daemon (waiting for running jobs), then start it with these options.

    If a process of the old daemon survives even SIGKILL, exits 1 without starting a second
    one (delayed_job#1123: restarts that piled up workers).
    """
    inv = prepare(opts)
    if not do_stop(inv, timeout):
        sys.exit(1)
    do_start(inv)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (running, pid, pidfile, stale, workers).")
@common_options(ignored=True)
def status(as_json: bool, **opts: Any) -> None:
    """Is the daemon running?  Exit 0 running, 1 dead with a pidfile left behind, 3 not running.

    When running, also lists the workers it has registered in dqueue_processes.  Running
    without a supervisor (it was killed) while its workers finish their jobs counts as
    running, and says so: 'stop' ends them, 'start' is refused until then.
    """
    inv = prepare(opts)
    state = pidfile.read_state(inv.pidfile)
    workers, error = registered_workers(inv, state) if state.running else ([], None)
    code = STATUS_RUNNING if state.running else STATUS_DEAD_PIDFILE if state.stale else STATUS_NOT_RUNNING
    if as_json:
        emit_json({"running": state.running, "pid": state.pid, "pidfile": str(inv.pidfile),
                   "stale": state.stale, "supervisor_alive": state.supervisor_alive,
                   "orphans": list(state.orphans), "workers": workers, "workers_error": error})
    elif state.running:
        if state.supervisor_alive:
            click.echo(f"delayed_job is running (pid {state.pid}, pidfile {inv.pidfile})")
        else:
            click.echo(f"delayed_job is running without its supervisor: pid {state.pid} is gone, but its "
                       f"workers (pids {pids(state.orphans)}) still run; 'delayed_job stop' ends them "
                       f"(pidfile {inv.pidfile})")
        for w in workers:
            click.echo(f"  worker pid {w['pid']}: {w['name']}, queues {w['queues'] or '*'}, "
                       f"heartbeat {w['heartbeat_age']:.1f} s ago")
        if error:
            click.echo(f"  workers unknown: {error}")
    elif state.stale:
        other = (f"; pid {state.pid} is another program now" if state.pid and pidfile.is_alive(state.pid)
                 else "")
        click.echo(f"delayed_job is not running, but its pidfile {inv.pidfile} (pid {state.pid}) is "
                   f"left behind{other}; 'delayed_job stop' removes it")
    else:
        click.echo(f"delayed_job is not running (no pidfile {inv.pidfile})")
    sys.exit(code)


def registered_workers(inv: Invocation, state: pidfile.PidState) -> tuple[list[dict[str, Any]], str | None]:
    """The registry rows of the daemon's workers; the database is optional for 'status'."""
    if state.supervisor_alive and state.pid is not None:
        mine = set(pidfile.children_of(state.pid))
    else:
        mine = set(state.holders)
    try:
        rows = processes.list_processes(inv.app.engine)
    except SQLAlchemyError as exc:
        return [], f"cannot read dqueue_processes ({type(exc).__name__})"
    return [r for r in rows if r["hostname"] == inv.settings.hostname and r["pid"] in mine], None


def wait_for_workers(inv: Invocation, pid: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Wait until the daemon's workers have registered, so 'started' means working."""
    deadline = time.monotonic() + timeout
    while True:
        if not pidfile.is_alive(pid):
            raise click.ClickException(f"delayed_job (pid {pid}) exited while starting; last lines of "
                                       f"{inv.logfile}:\n{daemon.log_tail(inv.logfile)}")
        workers, _ = registered_workers(inv, pidfile.read_state(inv.pidfile))
        if len(workers) >= inv.count or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


def main() -> None:
    try:
        cli(prog_name="delayed_job")
    except OSError as exc:  # an unusable pid or log directory: say so, without a traceback
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
