"""Real worker processes depositing in the fake Merritt: a worker SIGKILLed mid-POST never leads to
a second deposit, two hosts sharing one MariaDB database deposit each version once, and versions
held by hold-submissions.txt are deposited once after ``long_jobs restart``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from dqueue.repository.states import RepoState
from dqueue.repository.submit import submit
from dqueue.store import migrate, processes
from dqueue.store.engine import make_engine
from dqueue.testing.merritt import FakeMerritt
from dqueue.testing.static import StaticServer
from tests.helpers import cli_env, rows, run_cli, scalar, wait_until
from tests.repository_support import PASSWORD, add_version, latest, menv, settings_for, states
from tests.workers import worker


def test_sigkill_mid_deposit_sends_once_and_the_version_completes(
        engine: Engine, db_url: str, merritt: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    env = menv(merritt, web, tmp_path / "staging", tmp_path / "flags", DQUEUE_MERRITT_READ_TIMEOUT="60")
    rid = add_version(engine, tmp_path / "v1", {"counts.csv": b"a,b\n1,2\n"})
    submit(engine, rid, settings_for(db_url, env))
    slow = merritt.inject("slow", method="POST", path="/object/update", delay=4)  # in flight while we kill
    log = tmp_path / "worker.log"
    with worker(db_url, log, **env):
        wait_until(lambda: slow.hits == 1, 20, message="the deposit POST to reach Merritt")
        assert latest(engine, rid) is RepoState.PROCESSING  # committed before the POST
        (pid,) = [p["pid"] for p in processes.list_processes(engine) if p["kind"] == "worker"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: latest(engine, rid) is RepoState.COMPLETED, 40,
                   message="the recovered job to check Merritt and complete the version")
    merritt.wait_idle()
    assert slow.hits == 1 and len(merritt.deposits) == 1  # exactly one deposit reached Merritt
    assert states(engine, rid) == ["enqueued", "processing", "completed"]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
    text = log.read_text()
    assert "killed by SIGKILL" in text and "repo.recovered" in text
    assert PASSWORD not in text


def test_two_hosts_on_one_mariadb_deposit_each_version_once(
        mariadb_url: str, merritt: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    engine = make_engine(mariadb_url)
    migrate.upgrade(engine)
    try:
        base = menv(merritt, web, tmp_path / "staging", tmp_path / "flags")
        hosts = {name: {**base, "DQUEUE_HOSTNAME": name} for name in ("host-a", "host-b")}
        rids = [add_version(engine, tmp_path / f"d{i}", {"a.csv": f"{i}".encode() * 100},
                            doi=f"10.5061/dryad.two{i}") for i in range(6)]
        for rid in rids:  # both hosts accept a submit of every version
            for env in hosts.values():
                submit(engine, rid, settings_for(mariadb_url, env))
        with worker(mariadb_url, tmp_path / "a.log", "-n", "2", **hosts["host-a"]), \
                worker(mariadb_url, tmp_path / "b.log", "-n", "2", **hosts["host-b"]):
            for rid in rids[:3]:  # and a duplicate submit while they run
                submit(engine, rid, settings_for(mariadb_url, hosts["host-b"]))
            wait_until(lambda: all(latest(engine, r) is RepoState.COMPLETED for r in rids), 60,
                       message="every version to be completed")
        merritt.wait_idle()
        assert sorted(d.local_id or "" for d in merritt.deposits) == sorted(
            f"doi:10.5061/dryad.two{i}" for i in range(6))  # one deposit per version
        for rid in rids:
            assert states(engine, rid) == ["enqueued", "processing", "completed"]
        hosts_used = {r.hostname for r in rows(engine, "SELECT hostname FROM stash_engine_repo_queue_states")}
        assert hosts_used <= {"host-a", "host-b"}
    finally:
        engine.dispose()


def _long_jobs(db_url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dqueue.cli.long_jobs import main; main()", *args],
                          env=cli_env(db_url, **env), capture_output=True, text=True, timeout=60)


def test_hold_then_restart_deposits_each_held_version_once(
        engine: Engine, db_url: str, merritt: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    env = menv(merritt, web, tmp_path / "staging", tmp_path / "flags", DQUEUE_HOSTNAME="web-1")
    queued = add_version(engine, tmp_path / "v1", {"a.csv": b"1"}, doi="10.5061/dryad.hold1")
    later = add_version(engine, tmp_path / "v2", {"b.csv": b"2"}, doi="10.5061/dryad.hold2")
    assert run_cli(["repo", "submit", str(queued)], db_url, **env).returncode == 0  # its job waits
    assert _long_jobs(db_url, env, "drain").returncode == 0
    assert "held on web-1" in run_cli(["repo", "submit", str(later)], db_url, **env).stdout
    with worker(db_url, tmp_path / "worker.log", **env):
        wait_until(lambda: latest(engine, queued) is RepoState.REJECTED_SHUTTING_DOWN, 20,
                   message="the queued job to be held at its turn")
        assert merritt.requests == []  # nothing sent while held
        restarted = _long_jobs(db_url, env, "restart")
        assert restarted.returncode == 0, restarted.stderr
        wait_until(lambda: all(latest(engine, r) is RepoState.COMPLETED for r in (queued, later)), 30,
                   message="both held versions to be deposited after the restart")
        assert "no held submissions" in _long_jobs(db_url, env, "restart").stdout  # twice: nothing twice
    merritt.wait_idle()
    assert sorted(d.local_id or "" for d in merritt.deposits) == ["doi:10.5061/dryad.hold1",
                                                                   "doi:10.5061/dryad.hold2"]
    assert states(engine, queued) == ["enqueued", "rejected_shutting_down", "enqueued", "processing", "completed"]
    assert states(engine, later) == ["rejected_shutting_down", "enqueued", "processing", "completed"]
