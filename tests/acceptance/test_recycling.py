"""Long-running daemons stay lean (issue 7, point 13): workers are replaced after
max_jobs_per_worker jobs or when a job leaves them above max_worker_memory, and what a job
leaves running does not outlive its worker's stop."""
from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue import client
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs)
from tests.acceptance.test_orphans import running
from tests.helpers import job_rows, wait_until
from tests.workers import burst, lines, worker


def _pids_by_token(out: Path) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in lines(out)}


def test_a_worker_is_replaced_after_max_jobs_per_worker(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    c = client.Client(engine=engine)
    for i in range(7):
        c.enqueue("t.record", {"path": str(out), "token": f"r{i}"})
    result = burst(db_url, DQUEUE_MAX_JOBS_PER_WORKER="3")
    assert result.returncode == 0, result.stderr[-3000:]
    by_pid: dict[str, list[str]] = defaultdict(list)
    for token, pid in _pids_by_token(out).items():
        by_pid[pid].append(token)
    assert sorted(len(tokens) for tokens in by_pid.values()) == [1, 3, 3]  # each job once
    assert result.stderr.count("supervisor.worker_recycled") == 2
    assert "worker_died" not in result.stderr and "ran 3 jobs (max_jobs_per_worker)" in result.stderr


def test_a_worker_left_above_max_worker_memory_is_replaced(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    c = client.Client(engine=engine)
    c.enqueue("t.record", {"path": str(out), "token": "before"}, priority=1)
    c.enqueue("t.bloat", {"path": str(out), "mib": 200}, priority=2)
    c.enqueue("t.record", {"path": str(out), "token": "after"}, priority=3)
    result = burst(db_url, DQUEUE_MAX_WORKER_MEMORY="150")
    assert result.returncode == 0, result.stderr[-3000:]
    pids = _pids_by_token(out)
    assert pids["before"] == pids["ran"] != pids["after"]  # replaced after the job that bloated it
    assert "exceeds max_worker_memory 150 MiB" in result.stderr


@pytest.mark.parametrize("job_seconds", [0, 60])  # done before the stop / interrupted by it
def test_what_a_job_leaves_running_does_not_outlive_the_worker(engine: Engine, db_url: str,
                                                               tmp_path: Path, job_seconds: float) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job = client.Client(engine=engine).enqueue("t.spawn", {"path": str(out), "seconds": job_seconds})
    with worker(db_url, log, "--grace-period", "0.5") as proc:
        wait_until(lambda: len(lines(out)) == 2, 10, message="the job to leave a process behind")
        left = int(lines(out)[0])
        if job_seconds == 0:
            wait_until(lambda: job not in job_rows(engine), 10, message="the job to finish")
        assert running(left)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not running(left)
    assert "worker.ended_children" in log.read_text()


def test_what_a_job_leaves_behind_is_not_left_a_zombie(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    c = client.Client(engine=engine)
    c.enqueue("t.spawn", {"path": str(out), "seconds": 0, "child_seconds": 0.2})
    with worker(db_url, tmp_path / "log"):
        wait_until(lambda: len(lines(out)) == 2, 10, message="the job to leave a process behind")
        left = int(lines(out)[0])
        wait_until(lambda: not running(left), 10, message="the process to end")
        c.enqueue("t.record", {"path": str(out), "token": "next"})
        # Adopted by the worker (a subreaper), it is collected between jobs, not left a zombie.
        wait_until(lambda: not Path(f"/proc/{left}").exists(), 10, message="the zombie collected")
