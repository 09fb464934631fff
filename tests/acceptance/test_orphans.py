"""No orphaned workers: a supervisor's death stops its workers; SIGHUP is a graceful stop
(issue 7, point 1)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue import client
from dqueue.store import processes
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs)
from tests.helpers import ROOT, cli_env, job_rows, scalar, wait_until
from tests.workers import FAST, lines, worker

GRACE = 5.0  # tests.workers.FAST


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting for init to reap it, has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _worker_pids(engine: Engine) -> list[int]:
    return [p["pid"] for p in processes.list_processes(engine)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_workers_stop_when_their_supervisor_dies(engine: Engine, db_url: str, tmp_path: Path,
                                                 sig: int) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    c = client.Client(engine=engine)
    slow = c.enqueue("t.slow_record", {"path": str(out), "token": "slow", "seconds": 2})
    with worker(db_url, log, "-n", "2") as proc:
        pids = wait_until(lambda: len(_worker_pids(engine)) == 2 and lines(out) and _worker_pids(engine),
                          10, message="two workers, one running the slow job")
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
        later = c.enqueue("t.record", {"path": str(tmp_path / "later"), "token": "after the kill"})
        wait_until(lambda: not any(running(pid) for pid in pids), GRACE + 5,
                   message="every worker of the dead supervisor to exit")
    assert time.monotonic() - killed_at < GRACE + 5
    # The running job finished within its grace period; nothing ran after the supervisor died.
    assert [line.split()[0] for line in lines(out)] == ["start", "end"]
    assert slow not in job_rows(engine)
    assert lines(tmp_path / "later") == []
    assert job_rows(engine)[later]["attempts"] == 0
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs WHERE locked_by IS NOT NULL") == 0
    assert _worker_pids(engine) == []  # they deregistered on the way out
    assert "worker.orphaned" in log.read_text()


def test_an_orphaned_worker_with_a_stuck_job_ends_within_grace_plus_5s(engine: Engine, db_url: str,
                                                                       tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job = client.Client(engine=engine).enqueue("t.deaf", {"path": str(out)})
    with worker(db_url, log, DQUEUE_KILL_AFTER="10") as proc:  # grace 5 + 10 would be too late
        pid = int(wait_until(lambda: lines(out), 10, message="the job to start")[0].split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_until(lambda: not running(pid), GRACE + 5, message="the orphaned worker to end")
    row = job_rows(engine)[job]
    assert row["locked_by"] is None and row["failed_at"] is None  # handed back, not held
    assert "swallowed" in lines(out)


def test_sighup_stops_the_supervisor_gracefully(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job = client.Client(engine=engine).enqueue("t.slow_record", {"path": str(out), "token": "a", "seconds": 1.5})
    with worker(db_url, log, "-n", "2") as proc:
        wait_until(lambda: lines(out), 10, message="the job to start")
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=GRACE + 10) == 0
    assert [line.split()[0] for line in lines(out)] == ["start", "end"]
    assert job not in job_rows(engine)
    text = log.read_text()
    assert "supervisor.signal SIGHUP: stopping gracefully" in text
    assert "supervisor.stopped" in text and "Traceback" not in text


def test_sighup_to_a_worker_stops_it_gracefully_and_it_is_replaced(engine: Engine, db_url: str,
                                                                  tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    c = client.Client(engine=engine)
    c.enqueue("t.slow_record", {"path": str(out), "token": "a", "seconds": 1.5})
    with worker(db_url, log) as proc:
        first = int(wait_until(lambda: lines(out), 10, message="the job to start")[0].split()[2])
        os.kill(first, signal.SIGHUP)
        wait_until(lambda: _worker_pids(engine) and first not in _worker_pids(engine), 10,
                   message="a fresh worker in its place")
        assert proc.poll() is None
        c.enqueue("t.record", {"path": str(out), "token": "b"})
        wait_until(lambda: any(line.startswith("b ") for line in lines(out)), 10,
                   message="the fresh worker to run a job")
    assert [line.split()[0] for line in lines(out)] == ["start", "end", "b"]
    assert "SIGHUP: stopped gracefully" in log.read_text()


def test_sighup_to_delayed_job_run_is_a_logged_graceful_stop(engine: Engine, db_url: str,
                                                            tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    client.Client(engine=engine).enqueue("t.slow_record", {"path": str(out), "token": "a", "seconds": 1.5})
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bin" / "delayed_job"), "run", "-n", "2",
                                 "--import", "tests.sample_jobs"], env=cli_env(db_url, **FAST),
                                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: lines(out), 15, message="the job to start")
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=GRACE + 10) == 0  # never an unlogged death with exit 129
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [line.split()[0] for line in lines(out)] == ["start", "end"]
    assert "supervisor.signal SIGHUP: stopping gracefully" in log.read_text()
