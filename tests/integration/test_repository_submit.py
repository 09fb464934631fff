"""Submitting versions to the repository and re-enqueueing held ones (dqueue/repository/submit.py),
on SQLite and MariaDB: the state row and its job commit together, a duplicate never sends twice,
the hold marker holds, and restart takes held items over per host."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue import config
from dqueue.repository import store as repo
from dqueue.repository.states import RepoState
from dqueue.repository.submit import DEPOSIT_JOB, DEPOSIT_QUEUE, Outcome, SubmitRefused, requeue_held, submit
from tests.helpers import execute, job_rows, scalar
from tests.zenodo_support import add_resource, file_entry, manifest_for

Hosts = tuple[config.Settings, config.Settings]


@pytest.fixture
def hosts(db_url: str, tmp_path: Path) -> tuple[config.Settings, config.Settings]:
    """Two hosts sharing one database, each with its own flag directory."""
    return tuple(config.load(environ={"DQUEUE_HOSTNAME": name, "DQUEUE_FLAG_DIR": str(tmp_path / name)},
                             database_url=db_url) for name in ("host-a", "host-b"))  # type: ignore[return-value]


def _version(engine: Engine, tmp_path: Path, n: int = 1) -> int:
    doi = f"10.5061/dryad.sub{n}"
    return add_resource(engine, manifest_for(doi, [file_entry(tmp_path / f"v{n}", "f.csv", b"x" * n)]))


def _states(engine: Engine, rid: int) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [(str(r.state), r.hostname) for r in repo.history(conn, rid)]


def _hold(s: config.Settings) -> None:
    Path(s.flag_dir).mkdir(parents=True, exist_ok=True)
    (Path(s.flag_dir) / "hold-submissions.txt").touch()


def test_dqueue_hostname_is_honoured_by_the_settings(hosts: Hosts) -> None:
    assert [s.hostname for s in hosts] == ["host-a", "host-b"]


def test_submit_commits_the_enqueued_row_and_its_job_together(engine: Engine, tmp_path: Path,
                                                              hosts: Hosts) -> None:
    a, _ = hosts
    rid = _version(engine, tmp_path)
    result = submit(engine, rid, a)
    assert result.outcome is Outcome.ENQUEUED and result.hostname == "host-a" and result.job_id
    assert _states(engine, rid) == [("enqueued", "host-a")]
    job = job_rows(engine)[result.job_id]
    assert json.loads(job["handler"]) == {"job": DEPOSIT_JOB, "args": {"resource_id": rid, "force": False}}
    assert job["queue"] == DEPOSIT_QUEUE
    with engine.connect() as conn:
        assert repo.latest(conn, rid).job_id == result.job_id  # type: ignore[union-attr]


def test_a_failing_transaction_leaves_neither_row_nor_job(engine: Engine, tmp_path: Path,
                                                          hosts: Hosts) -> None:
    rid = _version(engine, tmp_path)
    with pytest.raises(RuntimeError, match="caller's failure"):
        with engine.begin() as conn:
            submit(conn, rid, hosts[0])
            raise RuntimeError("caller's failure")
    assert _states(engine, rid) == []
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_a_second_submit_while_the_job_is_pending_enqueues_nothing(engine: Engine, tmp_path: Path,
                                                                   hosts: Hosts) -> None:
    a, b = hosts
    rid = _version(engine, tmp_path)
    first = submit(engine, rid, a)
    second = submit(engine, rid, b)
    assert second.outcome is Outcome.ALREADY_PENDING and second.job_id == first.job_id
    assert _states(engine, rid) == [("enqueued", "host-a")]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 1
    # Once the job is gone (it ran, or an operator deleted it) a submit enqueues again.
    execute(engine, "DELETE FROM delayed_jobs")
    assert submit(engine, rid, b).outcome is Outcome.ENQUEUED
    assert _states(engine, rid) == [("enqueued", "host-a"), ("enqueued", "host-b")]


def test_a_version_sent_before_is_dropped_unless_forced(engine: Engine, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture, hosts: Hosts) -> None:
    a, _ = hosts
    rid = _version(engine, tmp_path)
    with engine.begin() as conn:
        repo.append_state(conn, rid, RepoState.ENQUEUED, "host-a")
        repo.append_state(conn, rid, RepoState.PROCESSING, "host-a")
        repo.append_state(conn, rid, RepoState.ERRORED, None)
    with caplog.at_level(logging.INFO, logger="dqueue.repository"):
        dropped = submit(engine, rid, a)
    assert dropped.outcome is Outcome.DUPLICATE_DROPPED and "--force" in dropped.message
    assert f"repo.duplicate_dropped resource={rid}" in caplog.text
    assert len(_states(engine, rid)) == 3 and scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0

    forced = submit(engine, rid, a, force=True, requested_by="ops@host-a")
    assert forced.outcome is Outcome.ENQUEUED and forced.forced
    assert _states(engine, rid)[-1] == ("enqueued", "host-a")
    handler = json.loads(job_rows(engine)[forced.job_id]["handler"])
    assert handler["args"] == {"resource_id": rid, "force": True}
    with engine.connect() as conn:
        [note] = repo.logs(conn, rid)
    assert note.archive_submission_request == "forced re-send requested by ops@host-a on host-a"
    assert "repo.force_resend" in caplog.text


def test_the_hold_marker_holds_a_submit_and_sends_nothing(engine: Engine, tmp_path: Path,
                                                          hosts: Hosts) -> None:
    a, _ = hosts
    rid = _version(engine, tmp_path)
    _hold(a)
    result = submit(engine, rid, a)
    assert result.outcome is Outcome.HELD and result.job_id is None
    assert _states(engine, rid) == [("rejected_shutting_down", "host-a")]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_an_unknown_resource_is_a_clear_error(engine: Engine, hosts: Hosts) -> None:
    with pytest.raises(SubmitRefused, match="no resource 4242"):
        submit(engine, 4242, hosts[0])


def test_restart_requeues_this_hosts_held_items_oldest_first_once(
        engine: Engine, tmp_path: Path, hosts: Hosts) -> None:
    a, b = hosts
    _hold(a)
    _hold(b)
    on_a = [_version(engine, tmp_path, n) for n in (1, 2)]
    on_b = _version(engine, tmp_path, 3)
    for rid in reversed(on_a):
        submit(engine, rid, a)
    submit(engine, on_b, b)
    done = requeue_held(engine, "host-a", "host-a")
    assert [r.resource_id for r in done] == list(reversed(on_a))  # the order they were held in
    assert all(_states(engine, rid)[-1] == ("enqueued", "host-a") for rid in on_a)
    assert _states(engine, on_b) == [("rejected_shutting_down", "host-b")]  # another host's: left alone
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 2
    assert requeue_held(engine, "host-a", "host-a") == []  # twice: nothing enqueued twice
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 2


def test_restart_takes_over_another_hosts_items_and_records_this_host(
        engine: Engine, tmp_path: Path, hosts: Hosts) -> None:
    a, b = hosts
    _hold(b)
    rid, other = _version(engine, tmp_path, 1), _version(engine, tmp_path, 2)
    submit(engine, rid, b)
    submit(engine, other, b)
    [taken] = [r for r in requeue_held(engine, "host-a", "host-b") if r.resource_id == rid]
    assert "taken over from host-b" in taken.message
    assert _states(engine, rid) == [("rejected_shutting_down", "host-b"), ("enqueued", "host-a")]
    assert requeue_held(engine, "host-b", "host-b") == []  # host-b's own restart finds nothing left


def test_the_old_runbook_sql_still_works(engine: Engine, tmp_path: Path,
                                         hosts: Hosts) -> None:
    a, b = hosts
    _hold(b)
    rid = _version(engine, tmp_path)
    submit(engine, rid, b)
    execute(engine, "UPDATE stash_engine_repo_queue_states SET hostname = 'host-a' WHERE id = (SELECT id FROM "
            "(SELECT max(id) AS id FROM stash_engine_repo_queue_states WHERE resource_id = :r) x)", r=rid)
    assert [r.resource_id for r in requeue_held(engine, "host-a", "host-a")] == [rid]
    assert _states(engine, rid)[-1] == ("enqueued", "host-a")


def test_a_held_forced_resend_is_forced_again_by_restart(engine: Engine, tmp_path: Path,
                                                         hosts: Hosts) -> None:
    a, _ = hosts
    rid = _version(engine, tmp_path)
    with engine.begin() as conn:
        repo.append_state(conn, rid, RepoState.PROCESSING, "host-a")
        repo.append_state(conn, rid, RepoState.COMPLETED, "host-a")
    _hold(a)
    assert submit(engine, rid, a, force=True).outcome is Outcome.HELD
    [again] = requeue_held(engine, "host-a", None)
    assert again.forced
    assert json.loads(job_rows(engine)[again.job_id]["handler"])["args"]["force"] is True


def test_a_submit_waits_for_another_hosts_open_submit_of_the_same_version(engine: Engine, tmp_path: Path,
                                                                          hosts: Hosts) -> None:
    """The resource row lock is the serialisation point: host-b's submit cannot decide while
    host-a's transaction (its enqueued row and job not yet committed) is open, and then sees the
    pending job.  Without the lock, both would enqueue (the test fails on MariaDB)."""
    import threading
    a, b = hosts
    rid = _version(engine, tmp_path)
    outcomes: list[Outcome] = []
    b_done = threading.Event()

    def host_b() -> None:
        outcomes.append(submit(engine, rid, b).outcome)
        b_done.set()

    with engine.begin() as conn:
        assert submit(conn, rid, a).outcome is Outcome.ENQUEUED
        thread = threading.Thread(target=host_b)
        thread.start()
        blocked = not b_done.wait(1.0)  # host-b must still be waiting on the lock
    thread.join(30)
    assert blocked, "host-b decided while host-a's submit was uncommitted"
    assert outcomes == [Outcome.ALREADY_PENDING]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 1
    assert _states(engine, rid) == [("enqueued", "host-a")]


def test_status_counts_current_states_per_host(engine: Engine, tmp_path: Path) -> None:
    from dqueue.repository.maintenance import status
    ids = [_version(engine, tmp_path, n) for n in range(1, 6)]
    with engine.begin() as conn:
        repo.append_state(conn, ids[0], RepoState.REJECTED_SHUTTING_DOWN, "web-1")
        repo.append_state(conn, ids[1], RepoState.ENQUEUED, "web-1")
        repo.append_state(conn, ids[1], RepoState.PROCESSING, "web-2")
        repo.append_state(conn, ids[2], RepoState.PROCESSING, "web-2")
        repo.append_state(conn, ids[2], RepoState.ERRORED, None)
        repo.append_state(conn, ids[3], RepoState.COMPLETED, "web-2")
        repo.append_state(conn, ids[4], RepoState.REJECTED_SHUTTING_DOWN, "web-2")
    section = status(engine)
    assert section["submissions"] == {"held": 2, "enqueued": 0, "processing": 1, "provisional_complete": 0,
                                      "completed": 1, "errored": 1}
    assert section["hosts"] == [
        {"host": None, "held": 0, "enqueued": 0, "processing": 0, "errored": 1},
        {"host": "web-1", "held": 1, "enqueued": 0, "processing": 0, "errored": 0},
        {"host": "web-2", "held": 1, "enqueued": 0, "processing": 1, "errored": 0}]
    assert section["oldest_held_since"] is not None
