"""``delayed_job status|start|stop`` decide by the pidfile's lock, not by the pid in it (issue 7).

The lock is held by the supervisor and inherited by its workers, so a recycled pid in a stale
pidfile is not taken for the daemon, and the workers of a SIGKILLed supervisor are still seen,
refuse a second start, and are stopped by ``stop``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine

from dqueue import pidfile
from dqueue.store import make_engine
from tests import daemon_support
from tests.daemon_support import SAMPLES, enqueue, started_pid
from tests.helpers import execute, scalar, wait_until


def dj(args: list[str], db_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``bin/delayed_job`` with a 30 s grace period unless ``env`` says otherwise."""
    return daemon_support.dj(args, db_url, cwd, timeout=90, **{"DQUEUE_GRACE_PERIOD": "30", **env})


@pytest.fixture
def workdir(db_url: str, tmp_path: Path) -> Iterator[Path]:
    """A directory with an initialised database; kills every process a failed test left holding the lock."""
    yield from daemon_support.daemon_workdir(db_url, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def bystander(workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process whose command line names delayed_job: an operator's ``tail -f``."""
    log = workdir / "var" / "log" / "delayed_job.log"
    log.parent.mkdir(parents=True)
    log.touch()
    proc = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait()


def test_a_recycled_pid_in_a_stale_pidfile_is_not_the_daemon(db_url: str, workdir: Path,
                                                             bystander: subprocess.Popen[bytes]) -> None:
    path = workdir / "var" / "run" / "delayed_job.pid"
    path.parent.mkdir(parents=True)
    path.write_text(f"{bystander.pid}\n")

    status = dj(["status"], db_url, workdir)
    assert status.returncode == 1, status.stdout  # LSB: not running, a pidfile is left behind
    assert "not running" in status.stdout and "another program" in status.stdout

    pid = started_pid(dj(["start", *SAMPLES], db_url, workdir))  # not refused
    assert pid != bystander.pid and path.read_text().strip() == str(pid)
    assert dj(["stop"], db_url, workdir).returncode == 0
    assert bystander.poll() is None

    path.write_text(f"{bystander.pid}\n")
    stop = dj(["stop"], db_url, workdir)
    assert stop.returncode == 0 and "stale pidfile" in stop.stdout, stop.stdout + stop.stderr
    assert bystander.poll() is None  # 'stop' did not kill the tail
    assert not path.exists()


def test_workers_of_a_killed_supervisor_are_seen_refuse_a_start_and_are_stopped(
        db_url: str, workdir: Path, engine: Engine) -> None:
    path = workdir / "var" / "run" / "delayed_job.pid"
    supervisor = started_pid(dj(["start", "-n", "2", *SAMPLES], db_url, workdir))
    workers = pidfile.children_of(supervisor)
    assert len(workers) == 2
    job = enqueue(db_url, workdir, "sample.sleep", {"seconds": 60})
    busy = wait_until(lambda: scalar(engine, "SELECT locked_by FROM delayed_jobs WHERE id = :id", id=job),
                      10, message="the long job claimed")
    busy_pid = int(re.search(r"pid:(\d+)", busy).group(1))  # type: ignore[union-attr]
    assert busy_pid in workers

    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not pidfile.is_alive(supervisor), 10, message="the supervisor gone")
    # The worker running the 60 s job outlives its supervisor (for its grace period at least).
    status = dj(["status", "--json"], db_url, workdir)
    data = json.loads(status.stdout)
    assert status.returncode == 0 and data["running"] and not data["supervisor_alive"], data
    assert busy_pid in data["orphans"] and supervisor not in data["orphans"]
    text = dj(["status"], db_url, workdir).stdout
    assert "without its supervisor" in text and str(busy_pid) in text

    refused = dj(["start", "-n", "2", *SAMPLES], db_url, workdir)
    assert refused.returncode == 1, refused.stdout
    assert "still run after their supervisor" in refused.stderr and str(busy_pid) in refused.stderr
    assert path.read_text().strip() == str(supervisor)  # no second daemon took over the pidfile

    stop = dj(["stop", "--timeout", "2"], db_url, workdir)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"stopped (pid {supervisor})" in stop.stdout
    assert not any(pidfile.is_alive(p) for p in workers)  # nothing of that daemon runs any more
    assert not pidfile.is_locked(path) and not path.exists()
    assert dj(["status"], db_url, workdir).returncode == 3

    execute(engine, "DELETE FROM delayed_jobs WHERE id = :id", id=job)  # the killed job would go first
    fresh = started_pid(dj(["start", *SAMPLES], db_url, workdir))
    out = workdir / "after.txt"
    enqueue(db_url, workdir, "sample.append", {"path": str(out), "line": "fresh"})
    wait_until(out.exists, 20, message="the fresh daemon runs jobs")
    assert dj(["stop", "--timeout", "2"], db_url, workdir).returncode == 0
    assert not pidfile.is_alive(fresh)


def test_stop_lets_the_orphaned_workers_finish_their_job(db_url: str, workdir: Path, engine: Engine) -> None:
    supervisor = started_pid(dj(["start", "-n", "2", *SAMPLES], db_url, workdir, DQUEUE_GRACE_PERIOD="20"))
    # The job must outlast two CLI start-ups on a loaded machine (4 s did not, with 4 test processes).
    job = enqueue(db_url, workdir, "sample.sleep", {"seconds": 10})
    wait_until(lambda: scalar(engine, "SELECT locked_by FROM delayed_jobs WHERE id = :id", id=job),
               10, message="the job claimed")
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not pidfile.is_alive(supervisor), 10, message="the supervisor gone")

    stop = dj(["stop"], db_url, workdir, DQUEUE_GRACE_PERIOD="20")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "whose supervisor is gone" in stop.stdout
    assert "SIGKILL" not in stop.stderr  # a graceful stop: the job had time to finish
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs WHERE id = :id", id=job) == 0  # it finished


def test_sighup_stops_the_daemon_gracefully_and_says_so(db_url: str, workdir: Path) -> None:
    path = workdir / "var" / "run" / "delayed_job.pid"
    supervisor = started_pid(dj(["start", "-n", "2", *SAMPLES], db_url, workdir))
    for private in (path, workdir / "var" / "log" / "delayed_job.log"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o640, private
    os.kill(supervisor, signal.SIGHUP)
    wait_until(lambda: not pidfile.is_locked(path), 20, message="the daemon and its workers gone")
    log = (workdir / "var" / "log" / "delayed_job.log").read_text()
    assert "supervisor.signal SIGHUP" in log and "supervisor.stopped" in log, log[-2000:]
    assert f"daemon.exit pid={supervisor}" in log  # its own cleanup ran: no unlogged exit 129
    assert not path.exists()
