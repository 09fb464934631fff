"""The same-host doorbell: rung after commit, wakes an idle worker, never loses or blocks a job."""
from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine

from dqueue import client, config, doorbell
from tests import sample_jobs  # noqa: F401
from tests.helpers import job_rows, wait_until
from tests.workers import lines, worker


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: a socket path past 108 bytes turns the doorbell off (logged), and pytest's
    tmp_path under pytest-xdist (.../popen-gw3/test_a_long_name_mariadb_0/) is that long."""
    folder = Path(tempfile.mkdtemp(prefix="bell-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _bell_settings(db_url: str, base: Path) -> config.Settings:
    return config.load(environ={}, database_url=db_url, doorbell_dir=str(base / "bell"))


def test_ring_wakes_listeners_and_clears_dead_ones(tmp_path: Path) -> None:
    folder = tmp_path / "bell" / "db"
    assert doorbell.ring(folder) == 0  # nobody ever listened: nothing to do, no error
    bell = doorbell.Doorbell.open(folder)
    assert bell is not None
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(folder / "999999.sock"))
    dead.close()  # a worker killed before it could remove its socket
    assert doorbell.ring(folder) == 1
    assert bell.sock.recv(8) == b"!"
    assert not (folder / "999999.sock").exists()
    bell.close()
    assert not list(folder.iterdir())


def test_doorbells_can_be_turned_off() -> None:
    assert doorbell.directory("off", "sqlite://") is None
    assert doorbell.Doorbell.open(None) is None and doorbell.ring(None) == 0


def test_a_joined_enqueue_rings_only_after_the_callers_commit(engine: Engine, db_url: str, short_tmp: Path) -> None:
    settings = _bell_settings(db_url, short_tmp)
    bell = doorbell.Doorbell.open(settings.doorbell_folder())
    assert bell is not None
    c = client.Client(settings, engine=engine)
    with engine.begin() as conn:
        c.enqueue("t.record", {"path": "/dev/null", "token": "x"}, connection=conn)
        with pytest.raises(BlockingIOError):
            bell.sock.recv(8)  # not yet visible to workers: no ring
    assert bell.sock.recv(8) == b"!"
    bell.close()


def test_a_local_enqueue_wakes_an_idle_worker_before_its_next_poll(engine: Engine, db_url: str, tmp_path: Path,
                                                                 short_tmp: Path) -> None:
    out, bell_dir = tmp_path / "out", short_tmp / "bell"
    c = client.Client(_bell_settings(db_url, short_tmp), engine=engine)
    with worker(db_url, tmp_path / "log", DQUEUE_SLEEP_DELAY="30", DQUEUE_DOORBELL_DIR=str(bell_dir)):
        wait_until(lambda: list(bell_dir.glob("*/*.sock")), 10, message="the worker's doorbell")
        # The first job proves the worker polls; once it has run, the worker's next claim finds
        # nothing and it sleeps for 30 s, so only the doorbell can start the second one promptly.
        for token in ("first", "second"):
            job_id = c.enqueue("t.record", {"path": str(out), "token": token})
            # Polling alone would take up to 36 s; the doorbell makes it immediate.
            wait_until(lambda i=job_id: i not in job_rows(engine), 5, message=f"the {token} job to run")
    assert [line.split()[0] for line in lines(out)] == ["first", "second"]
    assert not list(bell_dir.glob("*/*.sock"))  # the worker removed its socket on the way out
