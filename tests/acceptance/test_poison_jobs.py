"""A job that ends its worker process hurts only itself (issue 7, point 2).

Whatever way the worker ends while running it, the poison job's batch-mates come back at once
(not a heartbeat later: stale_after is 60 s here) and run on their first attempt, the poison job
fails for good after its max_attempts, and the supervisor keeps running.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue import client
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs)
from tests.helpers import execute, job_rows, wait_until
from tests.workers import lines, worker

SLOW_REAPER = {"DQUEUE_STALE_AFTER": "60"}  # only the supervisor's release can be quick enough
MATES = 5


def _enqueue_poison_and_mates(engine: Engine, poison: str, tmp_path: Path) -> tuple[int, Path]:
    c = client.Client(engine=engine)
    out = tmp_path / "mates"
    handler = "t.record" if poison == "recursion" else f"t.{poison}"
    poison_id = c.enqueue(handler, {"path": str(tmp_path / "poison")}, priority=-1, check=False)
    if poison == "recursion":  # a handler json.loads cannot decode without a RecursionError
        nested = "[" * 100_000 + "]" * 100_000
        execute(engine, "UPDATE delayed_jobs SET handler = :h WHERE id = :id",
                h='{"job": "t.record", "args": {"path": ' + nested + "}}", id=poison_id)
    for i in range(MATES):
        c.enqueue("t.attempt", {"path": str(out), "token": f"m{i}"})
    return poison_id, out


@pytest.mark.parametrize("poison, evidence", [
    ("exit0", "lost their worker"),  # os._exit(0): a clean exit code, but never deregistered
    ("sys_exit", "SystemExit: 3"),
    ("keyboard_interrupt", "KeyboardInterrupt"),
    ("segfault", "lost their worker"),
    ("suicide", "lost their worker"),  # SIGKILL, as the OOM killer sends
    ("recursion", "HandlerError"),
])
def test_a_poison_job_fails_alone_and_the_daemon_keeps_running(
        engine: Engine, db_url: str, tmp_path: Path, poison: str, evidence: str) -> None:
    poison_id, out = _enqueue_poison_and_mates(engine, poison, tmp_path)
    log = tmp_path / "log"
    with worker(db_url, log, **SLOW_REAPER) as proc:
        wait_until(lambda: len(lines(out)) == MATES, 20, message="the batch-mates to run")
        wait_until(lambda: job_rows(engine)[poison_id]["failed_at"] is not None, 20,
                   message="the poison job to fail for good")
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()[-3000:]
    ran = sorted(line.split()[:2] for line in lines(out))
    assert ran == [[f"m{i}", "1"] for i in range(MATES)]  # each once, on its first attempt
    row = job_rows(engine)[poison_id]
    assert row["locked_by"] is None and evidence in row["last_error"], row["last_error"]
    assert set(job_rows(engine)) == {poison_id}
    text = log.read_text()
    assert "giving_up" not in text and "Traceback" not in text


def test_workers_dying_for_no_job_make_the_supervisor_give_up(engine: Engine, db_url: str,
                                                              tmp_path: Path) -> None:
    """Deaths that no job explains (here: idle workers killed) still end in exit 1."""
    from dqueue.store import processes
    log, killed = tmp_path / "log", set[int]()

    def a_new_worker() -> int | None:
        pids = {p["pid"] for p in processes.list_processes(engine)} - killed
        return pids.pop() if pids else None

    with worker(db_url, log) as proc:
        while proc.poll() is None and len(killed) < 10:
            pid = wait_until(lambda: a_new_worker() or proc.poll() is not None, 15,
                             message="a fresh worker")
            if pid is True:
                break
            killed.add(pid)
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
    assert "supervisor.giving_up worker 0 died 6 times" in log.read_text()
