"""``delayed_job start|stop|restart|status|run`` as real processes, on SQLite and MariaDB.

Every test works in its own directory: the relative default var/run and var/log must follow the
daemon's working directory, which python-daemon would otherwise change to /.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine

from dqueue import pidfile
from dqueue.store import make_engine
from tests.daemon_support import FAST, LAUNCHER, SAMPLES, daemon_workdir, dj, enqueue, started_pid
from tests.helpers import cli_env, scalar, wait_until


def status_json(db_url: str, cwd: Path) -> tuple[int, dict[str, object]]:
    result = dj(["status", "--json"], db_url, cwd)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def workdir(db_url: str, tmp_path: Path) -> Iterator[Path]:
    """A directory with an initialised database; kills any daemon a failed test left behind."""
    yield from daemon_workdir(db_url, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def job_count(engine: Engine) -> int:
    return int(scalar(engine, "SELECT COUNT(*) FROM delayed_jobs"))


def test_start_work_refuse_second_stop(db_url: str, workdir: Path, engine: Engine) -> None:
    pid = started_pid(dj(["start", "-n", "2", *SAMPLES], db_url, workdir))
    assert (workdir / "var" / "run" / "delayed_job.pid").read_text().strip() == str(pid)

    code, status = status_json(db_url, workdir)
    assert code == 0 and status["running"] and status["pid"] == pid
    assert len(status["workers"]) == 2  # type: ignore[arg-type]

    out = workdir / "out.txt"
    for i in range(3):
        enqueue(db_url, workdir, "sample.append", {"path": str(out), "line": f"job {i}"})
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 3, 20, message="jobs ran")
    wait_until(lambda: job_count(engine) == 0, 10, message="job rows deleted")

    again = dj(["start", "-n", "2", *SAMPLES], db_url, workdir)
    assert again.returncode == 1
    assert f"already running (pid {pid}" in again.stderr

    stop = dj(["stop"], db_url, workdir)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"stopped (pid {pid}) in" in stop.stdout
    assert not pidfile.is_alive(pid)
    log = (workdir / "var" / "log" / "delayed_job.log").read_text()
    assert "supervisor.stopped" in log and "supervisor.kill" not in log  # graceful, nothing killed
    assert dj(["status"], db_url, workdir).returncode == 3
    assert not (workdir / "var" / "run" / "delayed_job.pid").exists()
    # Stopping what is not running is not an error (deploy scripts run stop unconditionally).
    again_stop = dj(["stop"], db_url, workdir)
    assert again_stop.returncode == 0 and "not running" in again_stop.stdout


def test_sigterm_lets_the_running_job_finish(db_url: str, workdir: Path, engine: Engine) -> None:
    pid = started_pid(dj(["start", *SAMPLES], db_url, workdir))
    job_id = enqueue(db_url, workdir, "sample.sleep", {"seconds": 2})
    wait_until(lambda: scalar(engine, "SELECT locked_by FROM delayed_jobs WHERE id = :id", id=job_id),
               10, message="job claimed")

    stop = dj(["stop"], db_url, workdir)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"stopped (pid {pid})" in stop.stdout
    # Finished, not interrupted and handed back: a finished job's row is deleted.
    assert job_count(engine) == 0
    log = (workdir / "var" / "log" / "delayed_job.log").read_text()
    assert f"job.done id={job_id} job=sample.sleep" in log
    assert "job.interrupt" not in log


def test_restart_replaces_the_daemon_without_extra_workers(db_url: str, workdir: Path) -> None:
    old = started_pid(dj(["start", *SAMPLES], db_url, workdir))
    # Options before the command, as capistrano recipes wrote them.
    result = dj(["-n", "2", *SAMPLES, "restart"], db_url, workdir)
    new = started_pid(result)
    assert f"stopped (pid {old})" in result.stdout
    assert new != old and not pidfile.is_alive(old)
    code, status = status_json(db_url, workdir)
    assert code == 0 and status["pid"] == new and len(status["workers"]) == 2  # type: ignore[arg-type]
    assert dj(["stop"], db_url, workdir).returncode == 0


def test_stale_pidfile(db_url: str, workdir: Path) -> None:
    pidfile = workdir / "var" / "run" / "delayed_job.pid"
    pidfile.parent.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pidfile.write_text(gone.stdout)

    status = dj(["status"], db_url, workdir)
    assert status.returncode == 1 and "left behind" in status.stdout  # LSB: dead, pidfile exists
    code, data = status_json(db_url, workdir)
    assert code == 1 and data["stale"] and not data["running"]

    stop = dj(["stop"], db_url, workdir)
    assert stop.returncode == 0 and "stale pidfile" in stop.stdout
    assert not pidfile.exists()

    # A pid recycled by an unrelated program does not count as our daemon.
    other = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text(f"{other.pid}\n")
        assert dj(["status"], db_url, workdir).returncode == 1
        pid = started_pid(dj(["start", *SAMPLES], db_url, workdir))
        assert pidfile.read_text().strip() == str(pid)
        assert dj(["stop"], db_url, workdir).returncode == 0
    finally:
        other.kill()
        other.wait()


def test_start_without_schema_says_run_db_init(db_url: str, tmp_path: Path) -> None:
    result = dj(["start"], db_url, tmp_path)
    assert result.returncode == 1
    assert "dqueue db init" in result.stderr
    assert not (tmp_path / "var" / "run" / "delayed_job.pid").exists()


def test_run_in_the_foreground_stops_on_sigterm(db_url: str, workdir: Path) -> None:
    pid_dir, log = workdir / "pids", workdir / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(LAUNCHER), "run", "-n", "2", "--pid-dir", str(pid_dir),
                                 *SAMPLES], env=cli_env(db_url, **FAST), cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def two_workers() -> bool:
            result = dj(["status", "--json", "--pid-dir", str(pid_dir)], db_url, workdir)
            return result.returncode == 0 and len(json.loads(result.stdout)["workers"]) == 2
        wait_until(two_workers, 20, interval=0.2, message="two workers registered")
        target = workdir / "fg.txt"
        enqueue(db_url, workdir, "sample.append", {"path": str(target), "line": "foreground"})
        wait_until(target.exists, 20, message="job ran")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "supervisor.stopped" in text and "worker.start" in text  # logs go to stderr
    assert not (pid_dir / "delayed_job.pid").exists()
