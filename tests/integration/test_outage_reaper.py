"""How a reaper tells dead processes from live ones (issue 7, point 3).

On its own host by pid and start time, whatever the heartbeat says; on other hosts by heartbeat
age, but only once its own heartbeats have been continuous for stale_after.
"""
from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, update

from dqueue import jobs, localproc
from dqueue.store import NewJob, processes, queue
from dqueue.store.claim import Claimer
from dqueue.store.schema import dqueue_processes as procs
from dqueue.store.schema import utcnow_plus
from tests.helpers import job_rows

HERE = socket.gethostname()
STALE, GAP = 3.0, 1.5
pytestmark = pytest.mark.skipif(localproc.start_token(os.getpid()) is None, reason="needs Linux /proc")


def _enqueue(engine: Engine) -> list[int]:
    with engine.begin() as conn:
        return queue.enqueue_many(conn, [NewJob(jobs.encode_handler("t.x", {}))])


def _set(engine: Engine, reg: processes.Registration, **ages: float) -> None:
    """Move a registration's times ``ages`` seconds into the past (database clock)."""
    values: dict[str, Any] = {col: utcnow_plus(bindparam(f"a_{col}", -age)) for col, age in ages.items()}
    with engine.begin() as conn:
        conn.execute(update(procs).where(procs.c.id == reg.id).values(**values))


def _holding(engine: Engine, host: str, pid: int, token: str | None = "keep") -> tuple[processes.Registration, int]:
    """A registration on ``host`` with ``pid`` holding one claimed job, stale in every way."""
    reg = processes.register(engine, "worker", host, pid)
    if token != "keep":
        with engine.begin() as conn:
            conn.execute(update(procs).where(procs.c.id == reg.id).values(process_start=token))
    (job,) = _enqueue(engine)
    assert Claimer(engine, reg.name).claim(1)
    _set(engine, reg, last_heartbeat_at=3600)
    with engine.begin() as conn:
        conn.execute(update(procs.metadata.tables["delayed_jobs"]).values(locked_at=utcnow_plus(-3600)))
    return reg, job


def _steady_reaper(engine: Engine, host: str) -> processes.Registration:
    reaper = processes.register(engine, "worker", host, os.getpid())
    _set(engine, reaper, up_since=STALE + 1)  # continuous heartbeats for longer than stale_after
    return reaper


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_live_process_on_this_host_is_never_reaped_however_old_its_heartbeat(engine: Engine) -> None:
    reg, job = _holding(engine, HERE, os.getpid())  # alive: it is us
    result = processes.reap(engine, STALE, HERE, _steady_reaper(engine, "elsewhere"), GAP)
    assert job not in result.released and job_rows(engine)[job]["locked_by"] == reg.name
    assert reg.name in {p["name"] for p in processes.list_processes(engine)}


@pytest.mark.parametrize("how", ["pid gone", "pid recycled", "host rebooted"])
def test_a_dead_process_on_this_host_is_reaped_at_once(engine: Engine, how: str) -> None:
    token = localproc.start_token(os.getpid())
    assert token is not None
    pid, stored = {"pid gone": (_dead_pid(), token),
                   "pid recycled": (os.getpid(), token.rsplit("/", 1)[0] + "/1"),
                   "host rebooted": (os.getpid(), "another-boot/" + token.split("/", 1)[1])}[how]
    reg, job = _holding(engine, HERE, pid, stored)
    # Its heartbeat is fresh (only pid and start time tell), or, after a reboot, as fresh as a
    # heartbeat sent just before this host booted can be.
    uptime = localproc.uptime()
    assert uptime is not None
    _set(engine, reg, last_heartbeat_at=uptime + 30 if how == "host rebooted" else 0)
    result = processes.reap_host(engine, HERE)  # as a supervisor starting on this host does
    assert result.released == [job] and result.processes == [reg.name]
    row = job_rows(engine)[job]
    assert row["locked_by"] is None and row["attempts"] == 1  # the attempt it died in counts
    assert processes.list_processes(engine) == []


def test_another_machine_with_the_same_hostname_is_judged_by_heartbeat(engine: Engine) -> None:
    """Another boot id with heartbeats since this host booted is no reboot of ours: a second
    machine misconfigured with our hostname.  Its live jobs must not be released at once."""
    token = localproc.start_token(os.getpid())
    assert token is not None
    reg, job = _holding(engine, HERE, os.getpid(), "another-boot/" + token.split("/", 1)[1])
    _set(engine, reg, last_heartbeat_at=0)
    assert processes.reap_host(engine, HERE).released == []
    assert job_rows(engine)[job]["locked_by"] == reg.name
    _set(engine, reg, last_heartbeat_at=3600)
    assert processes.reap(engine, STALE, HERE, _steady_reaper(engine, HERE), GAP).released == [job]


def test_another_pid_namespace_is_judged_by_heartbeat(engine: Engine) -> None:
    token = localproc.start_token(os.getpid())
    assert token is not None
    boot, _, ticks = token.split("/")
    reg, job = _holding(engine, HERE, _dead_pid(), f"{boot}/1234/{ticks}")  # a container
    _set(engine, reg, last_heartbeat_at=0)
    assert processes.reap_host(engine, HERE).released == []
    _set(engine, reg, last_heartbeat_at=3600)
    assert processes.reap(engine, STALE, HERE, _steady_reaper(engine, HERE), GAP).released == [job]


def test_a_reaper_back_from_an_outage_judges_no_one_by_heartbeat(engine: Engine) -> None:
    reg, job = _holding(engine, "host-a", 4242)  # another host, silent for an hour
    reaper = processes.register(engine, "worker", "host-b", os.getpid())
    _set(engine, reaper, last_heartbeat_at=2 * STALE, up_since=3600)  # we were cut off too
    assert processes.reap(engine, STALE, "host-b", reaper, GAP).released == []
    assert processes.heartbeat(engine, reaper, GAP)  # back: a new continuous run starts now
    assert processes.reap(engine, STALE, "host-b", reaper, GAP).released == []
    _set(engine, reaper, up_since=STALE + 1)  # ... and has lasted stale_after
    assert processes.reap(engine, STALE, "host-b", reaper, GAP).released == [job]
    assert reg.name not in {p["name"] for p in processes.list_processes(engine)}


def test_heartbeats_within_the_gap_keep_up_since(engine: Engine) -> None:
    reg = processes.register(engine, "worker", "h", 1)
    _set(engine, reg, up_since=100, last_heartbeat_at=0.5)
    processes.heartbeat(engine, reg, GAP)
    (row,) = processes.list_processes(engine)
    assert (row["last_heartbeat_at"] - row["up_since"]).total_seconds() > 90
    _set(engine, reg, last_heartbeat_at=GAP + 1)
    processes.heartbeat(engine, reg, GAP)
    (row,) = processes.list_processes(engine)
    assert abs((row["last_heartbeat_at"] - row["up_since"]).total_seconds()) < 1  # a new run


def test_an_exited_workers_rows_come_back_by_host_and_pid_even_if_it_deregistered(engine: Engine) -> None:
    reg = processes.register(engine, "worker", "a_b", 4242)
    (job,) = _enqueue(engine)
    assert Claimer(engine, reg.name).claim(1)
    processes.deregister(engine, reg)  # a worker that cleaned up, then died (sys.exit in its loop)
    lookalike = processes.register(engine, "worker", "aXb", 4242)  # '_' is no wildcard here
    (other,) = _enqueue(engine)
    assert Claimer(engine, lookalike.name).claim(1)
    result = processes.release_exited(engine, "a_b", 4242, "exited with status 0")
    assert result.released == [job] and result.processes == []  # nothing left registered
    rows = job_rows(engine)
    assert rows[job]["locked_by"] is None and rows[other]["locked_by"] == lookalike.name
