"""The network doorbell on MariaDB: an enqueue from another host wakes an idle worker at once;
without it the job waits for the poll; noise neither wakes nor busies the worker.

Other hosts are simulated with ``hostname``: the worker registers as hostA, the client says it is
hostB and does not ring the UNIX doorbell, so only the UDP datagram can reach the worker.
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import Engine, event

from dqueue import client, config, netbell
from dqueue.store import make_engine, migrate, processes
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs for Client.enqueue)
from tests.helpers import job_rows, rows, wait_until
from tests.workers import lines, worker

pytestmark = pytest.mark.mariadb
ASLEEP = {"DQUEUE_HOSTNAME": "hostA", "DQUEUE_SLEEP_DELAY": "30"}  # polls only every 24-36 s


@pytest.fixture
def engine(mariadb_url: str) -> Iterator[Engine]:
    eng = make_engine(mariadb_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _client(engine: Engine, url: str, **settings: Any) -> client.Client:
    values: dict[str, Any] = {"hostname": "hostB", "doorbell_dir": "off", **settings}
    return client.Client(config.load(environ={}, database_url=url, **values), engine=engine)


def _registered_bell(engine: Engine) -> str:
    found = rows(engine, "SELECT doorbell FROM dqueue_processes WHERE kind = 'worker'")
    return str(found[0][0]) if found and found[0][0] else ""


def _main_thread_cpu(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/schedstat") as fh:
        return int(fh.read().split()[0])  # nanoseconds on CPU


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in seconds


def _asleep(pid: int) -> Callable[[], bool]:
    """The worker's main thread used no CPU for 0.2 s: it is in its (30 s) idle sleep."""
    def check() -> bool:
        before = _main_thread_cpu(pid)
        time.sleep(0.2)
        return _main_thread_cpu(pid) == before
    return check


def _worker_pid(engine: Engine) -> int:
    return int(rows(engine, "SELECT pid FROM dqueue_processes WHERE kind = 'worker'")[0][0])


def _stays(predicate: Callable[[], Any], seconds: float) -> bool:
    """``predicate`` held for the whole of ``seconds`` (for what must *not* happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.05)
    return True


def _started_within(engine: Engine, job_id: int, seconds: float) -> float:
    began = time.monotonic()
    wait_until(lambda: job_id not in job_rows(engine), seconds, interval=0.01,
               message=f"job {job_id} to run")
    return time.monotonic() - began


@pytest.mark.parametrize("client_host", ["hostB", "hostA"])
def test_an_enqueue_from_another_host_wakes_an_idle_worker_at_once(
        engine: Engine, mariadb_url: str, tmp_path: Path, client_host: str) -> None:
    # hostA: the worker's own host, but this client does not ring the UNIX doorbell, so it rings
    # the same-host workers over UDP as well.
    out = tmp_path / "out"
    c = _client(engine, mariadb_url, hostname=client_host)
    with worker(mariadb_url, tmp_path / "log", **ASLEEP):
        bell = wait_until(lambda: _registered_bell(engine), 15, message="the worker's network bell")
        assert bell.startswith("udp 127.0.0.1 ")
        shown = [p["doorbell"] for p in processes.list_processes(engine)]
        assert shown == [bell.rsplit(" ", 1)[0]]  # `dqueue workers` never shows the secret
        pid = _worker_pid(engine)
        for token in ("first", "second", "third"):
            wait_until(_asleep(pid), 10, interval=0, message="the worker to sleep")
            job_id = c.enqueue("t.record", {"path": str(out), "token": token})
            assert _started_within(engine, job_id, 5) < 1.0  # polling alone: 24-36 s
        # An enqueue that joins the caller's transaction rings after the caller's COMMIT.
        wait_until(_asleep(pid), 10, interval=0, message="the worker to sleep")
        with engine.begin() as conn:
            job_id = c.enqueue("t.record", {"path": str(out), "token": "joined"}, connection=conn)
        assert _started_within(engine, job_id, 5) < 1.0
    assert [line.split()[0] for line in lines(out)] == ["first", "second", "third", "joined"]


def test_with_the_network_doorbell_off_a_job_from_another_host_waits_for_the_poll(
        engine: Engine, mariadb_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    silent = _client(engine, mariadb_url, network_doorbell="off")
    with worker(mariadb_url, tmp_path / "log", **ASLEEP):
        wait_until(lambda: _registered_bell(engine), 15, message="the worker's network bell")
        wait_until(_asleep(_worker_pid(engine)), 10, interval=0, message="the worker to sleep")
        job_id = silent.enqueue("t.record", {"path": str(out), "token": "polled"})
        assert _stays(lambda: job_id in job_rows(engine), 1.5), "started without a ring"
        _client(engine, mariadb_url).ring()  # what the next enqueue from a host with the bell does
        _started_within(engine, job_id, 5)


def test_a_worker_with_the_network_doorbell_off_registers_none(
        engine: Engine, mariadb_url: str, tmp_path: Path) -> None:
    with worker(mariadb_url, tmp_path / "log", DQUEUE_NETWORK_DOORBELL="off"):
        wait_until(lambda: rows(engine, "SELECT id FROM dqueue_processes"), 15, message="registration")
        assert _registered_bell(engine) == ""
        assert _client(engine, mariadb_url)._network_ringer().ring() == 0  # type: ignore[union-attr]


def test_noise_does_not_wake_the_worker_and_a_flood_does_not_busy_it(
        engine: Engine, mariadb_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    silent = _client(engine, mariadb_url, network_doorbell="off")
    with worker(mariadb_url, tmp_path / "log", **ASLEEP):
        entry = wait_until(lambda: _registered_bell(engine), 15, message="the worker's network bell")
        target = netbell.parse(entry)
        assert target is not None
        _, address, secret = target
        pid = _worker_pid(engine)
        wait_until(_asleep(pid), 10, interval=0, message="the worker to sleep")
        job_id = silent.enqueue("t.record", {"path": str(out), "token": "noise"})
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for noise in (b"", b"ring", secret[:-1], secret + b"!", secret.upper(), b"0" * len(secret)):
            sender.sendto(noise, address)
        assert _stays(lambda: job_id in job_rows(engine), 1.0), "a datagram without the secret woke it"

        stop, sent = threading.Event(), [0]

        def flood() -> None:
            while not stop.is_set():
                for _ in range(100):
                    sender.sendto(b"not the secret", address)
                sent[0] += 100
        flooding = threading.Thread(target=flood)
        cpu, began = _process_cpu(pid), time.monotonic()
        flooding.start()
        try:
            still_queued = _stays(lambda: job_id in job_rows(engine), 2.0)
        finally:
            stop.set()
            flooding.join()
        used = (_process_cpu(pid) - cpu) / (time.monotonic() - began)
        assert sent[0] > 10_000 and still_queued
        assert used < 0.15, f"the worker used {used:.0%} of a core under a flood of noise"

        def rung() -> bool:  # the real secret still rings once the flood has drained (a ring
            sender.sendto(secret, address)  # sent into a full socket buffer is dropped)
            return job_id not in job_rows(engine)
        wait_until(rung, 5, interval=0.1, message="a ring after the flood")
        sender.close()


def test_joined_enqueues_that_ring_before_their_commit_still_start_at_once(
        engine: Engine, mariadb_url: str, tmp_path: Path) -> None:
    # SQLAlchemy's commit event rings just before the COMMIT; a worker that polls in between
    # finds nothing, and must look again (ECHO_DELAY) rather than sleep for sleep_delay (30 s).
    out = tmp_path / "out"
    c = _client(engine, mariadb_url, hostname="hostB")
    with worker(mariadb_url, tmp_path / "log", **ASLEEP):
        wait_until(lambda: _registered_bell(engine), 15, message="the worker's network bell")
        pid = _worker_pid(engine)
        for i in range(20):
            wait_until(_asleep(pid), 10, interval=0, message="the worker to sleep")
            with engine.begin() as conn:
                job_id = c.enqueue("t.record", {"path": str(out), "token": f"j{i}"}, connection=conn)
                # Listeners run in order: this one, after dqueue's ring, holds the COMMIT back a
                # little, as a slow fsync would, so the woken worker's first poll misses the job.
                event.listen(conn, "commit", lambda _conn: time.sleep(0.004))
            assert _started_within(engine, job_id, 5) < 1.0, f"joined enqueue {i} waited for the poll"
    assert len(lines(out)) == 20
