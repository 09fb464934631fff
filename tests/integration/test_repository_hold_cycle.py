"""The whole hold/restart cycle with two hosts sharing one database (on SQLite and MariaDB): held
at submit and at the job's turn, restarted per host and taken over, each version deposited in the
fake Merritt exactly once, and a restart or submit run again sends nothing twice."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dqueue import flags
from dqueue.repository.states import RepoState
from dqueue.repository.submit import Outcome, requeue_held, submit
from dqueue.testing.merritt import FakeMerritt
from dqueue.testing.static import StaticServer
from tests.helpers import rows, scalar
from tests.repository_support import add_version, latest, menv, run_due, run_until, settings_for


def _hosts_of(engine: Engine, rid: int) -> list[tuple[str, str | None]]:
    return [(r.state, r.hostname) for r in rows(engine, "SELECT state, hostname FROM stash_engine_repo_queue_states "
                                                "WHERE resource_id = :r ORDER BY id", r=rid)]


def test_hold_then_per_host_restart_deposits_each_version_once(
        engine: Engine, db_url: str, merritt: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    a = settings_for(db_url, menv(merritt, web, tmp_path / "staging", tmp_path / "a-flags", DQUEUE_HOSTNAME="web-a"))
    b = settings_for(db_url, menv(merritt, web, tmp_path / "staging", tmp_path / "b-flags", DQUEUE_HOSTNAME="web-b"))
    r1 = add_version(engine, tmp_path / "d1", {"a.csv": b"1"}, doi="10.5061/dryad.cycle1")
    r2 = add_version(engine, tmp_path / "d2", {"b.csv": b"22"}, doi="10.5061/dryad.cycle2")

    # r1 is accepted by web-a, then web-b (draining) runs its job: held on web-b, nothing sent.
    assert submit(engine, r1, a).outcome is Outcome.ENQUEUED
    flags.drain(b.flag_dir)
    run_due(engine, b)
    assert _hosts_of(engine, r1) == [("enqueued", "web-a"), ("rejected_shutting_down", "web-b")]
    # r2 is submitted on web-a while web-a drains: held on web-a at once.
    flags.drain(a.flag_dir)
    assert submit(engine, r2, a).outcome is Outcome.HELD
    assert merritt.requests == [] and scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0

    # web-a's restart: its own held item only; then it takes web-b's over.
    flags.clear(a.flag_dir)
    assert [r.resource_id for r in requeue_held(engine, "web-a", "web-a")] == [r2]
    assert latest(engine, r1) is RepoState.REJECTED_SHUTTING_DOWN
    assert [r.resource_id for r in requeue_held(engine, "web-a", "web-b")] == [r1]
    assert requeue_held(engine, "web-a", None) == []  # run again: nothing twice
    assert _hosts_of(engine, r1)[-1] == ("enqueued", "web-a")

    run_until(engine, a, lambda: all(latest(engine, r) is RepoState.COMPLETED for r in (r1, r2)))
    assert len(merritt.deposits) == 2 and sorted(d.fields["localIdentifier"] for d in merritt.deposits) == [
        "doi:10.5061/dryad.cycle1", "doi:10.5061/dryad.cycle2"]
    # A late duplicate submit of a completed version sends nothing.
    assert submit(engine, r1, a).outcome is Outcome.DUPLICATE_DROPPED
    run_due(engine, a)
    assert len(merritt.deposits) == 2
