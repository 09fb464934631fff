"""Outages and restarts (issue 7, point 3): a database outage longer than ``stale_after`` never
makes a live job run twice, and a host whose every dqueue process was killed gets its jobs
back as soon as a new supervisor starts there, not ``stale_after`` later."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dqueue import client
from dqueue.store import make_engine, migrate, processes
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs)
from tests.fakes.tcp_proxy import TcpProxy
from tests.helpers import job_rows, wait_until
from tests.workers import lines, worker

STALE = 3.0  # tests.workers.FAST


def _through(proxy: TcpProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def test_an_outage_longer_than_stale_after_never_runs_a_live_job_twice(mariadb_url: str,
                                                                       tmp_path: Path) -> None:
    engine = make_engine(mariadb_url)
    migrate.upgrade(engine)
    url = make_url(mariadb_url)
    target = (url.host or "127.0.0.1", url.port or 3306)
    proxy_a, proxy_b = TcpProxy(target), TcpProxy(target)
    out = tmp_path / "out"
    job = client.Client(engine=engine).enqueue("t.slow_record", {"path": str(out), "token": "a", "seconds": 12})
    try:
        with worker(_through(proxy_a, mariadb_url), tmp_path / "log-a", DQUEUE_HOSTNAME="host-a"):
            wait_until(lambda: lines(out), 15, message="host a to start the job")
            with worker(_through(proxy_b, mariadb_url), tmp_path / "log-b", DQUEUE_HOSTNAME="host-b"):
                wait_until(lambda: {p["hostname"] for p in processes.list_processes(engine)} ==
                           {"host-a", "host-b"}, 15, message="host b registered")
                time.sleep(STALE + 1)  # host b's reaper has been up long enough to judge others
                proxy_a.pause()
                proxy_b.pause()
                time.sleep(2 * STALE)  # nobody can heartbeat: every heartbeat is stale now
                proxy_b.resume()  # host b is back first, as after a failover one client is
                time.sleep(STALE / 2)
                proxy_a.resume()
                wait_until(lambda: job not in job_rows(engine), 30, message="the job to finish")
    finally:
        proxy_a.close()
        proxy_b.close()
    assert [line.split()[0] for line in lines(out)] == ["start", "end"]  # once, on host a
    assert "reaper.job_released" not in (tmp_path / "log-b").read_text()
    engine.dispose()


def test_a_new_supervisor_releases_the_jobs_of_its_hosts_dead_processes_at_once(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = client.Client(engine=engine).enqueue("t.slow_record", {"path": str(out), "token": "a", "seconds": 1})
    slow_reaper = {"DQUEUE_STALE_AFTER": "120", "DQUEUE_HEARTBEAT_INTERVAL": "10"}
    with worker(db_url, tmp_path / "log-1", "-n", "2", **slow_reaper) as first:
        wait_until(lambda: lines(out), 10, message="the job to start")
        pids = [p["pid"] for p in processes.list_processes(engine)]
        for pid in [first.pid, *pids]:  # the whole host goes: every dqueue process at once
            os.kill(pid, signal.SIGKILL)
        first.wait()
    assert job_rows(engine)[job]["locked_by"] is not None
    restarted_at = time.monotonic()
    with worker(db_url, tmp_path / "log-2", **slow_reaper):
        wait_until(lambda: job not in job_rows(engine), 15, message="the job to run again")
    assert time.monotonic() - restarted_at < 15  # not stale_after (120 s) later
    assert [line.split()[0] for line in lines(out)] == ["start", "start", "end"]
    assert f"reaper.job_released id={job}" in (tmp_path / "log-2").read_text()
    assert not {p["pid"] for p in processes.list_processes(engine)} & set(pids)
