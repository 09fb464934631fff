"""The repository's state log and submission logs (dqueue/repository/store.py), on SQLite and MariaDB."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dqueue.repository import store as repo
from dqueue.repository.states import RepoState
from tests.helpers import execute, rows, scalar
from tests.zenodo_support import add_resource, file_entry, manifest_for

DOI = "10.5061/dryad.store"


def _version(engine: Engine, tmp_path: Path, doi: str = DOI, n: int = 1) -> int:
    return add_resource(engine, manifest_for(doi, [file_entry(tmp_path / f"{doi[-5:]}{n}", f"f{n}.csv", b"x" * n)]))


def test_the_log_is_append_only_and_the_latest_row_by_id_is_the_state(engine: Engine, tmp_path: Path) -> None:
    rid = _version(engine, tmp_path)
    with engine.begin() as conn:
        first = repo.append_state(conn, rid, RepoState.ENQUEUED, "host-a")
        second = repo.append_state(conn, rid, RepoState.PROCESSING, "host-a")
        repo.append_state(conn, rid, RepoState.COMPLETED, None)
    # Same timestamps (or even older ones written by hand) do not matter: the latest id wins.
    execute(engine, "UPDATE stash_engine_repo_queue_states SET updated_at = '2020-01-01 00:00:00' "
            "WHERE state = 'completed'")
    with engine.connect() as conn:
        latest = repo.latest(conn, rid)
        assert latest is not None and latest.state is RepoState.COMPLETED and latest.hostname is None
        assert [r.state for r in repo.history(conn, rid)] == [RepoState.ENQUEUED, RepoState.PROCESSING,
                                                               RepoState.COMPLETED]
        assert first < second
        assert repo.ever_reached(conn, rid, RepoState.PROCESSING) and repo.ever_sent(conn, rid)
        assert not repo.ever_reached(conn, rid, RepoState.ERRORED)
        assert repo.latest(conn, rid + 999) is None
    assert scalar(engine, "SELECT COUNT(*) FROM stash_engine_repo_queue_states") == 3


def test_the_operators_latest_per_resource_sql_agrees(engine: Engine, tmp_path: Path) -> None:
    a, b = _version(engine, tmp_path, n=1), _version(engine, tmp_path, n=2)
    with engine.begin() as conn:
        repo.append_state(conn, a, RepoState.ENQUEUED, "host-a")
        repo.append_state(conn, b, RepoState.REJECTED_SHUTTING_DOWN, "host-b")
        repo.append_state(conn, a, RepoState.PROCESSING, "host-a")
    # dryad.md 3.1: the scope latest_per_resource, as operators type it.
    found = rows(engine, "SELECT s.resource_id, s.state, s.hostname FROM stash_engine_repo_queue_states s "
                 "JOIN (SELECT resource_id, max(id) AS id FROM stash_engine_repo_queue_states GROUP BY resource_id) "
                 "latest ON latest.id = s.id ORDER BY s.resource_id")
    assert [tuple(r) for r in found] == [(a, "processing", "host-a"), (b, "rejected_shutting_down", "host-b")]
    with engine.connect() as conn:
        assert [(r.resource_id, r.state) for r in repo.listing(conn)] == [
            (b, RepoState.REJECTED_SHUTTING_DOWN), (a, RepoState.PROCESSING)]
        assert [r.resource_id for r in repo.listing(conn, state=RepoState.PROCESSING)] == [a]
        assert [r.resource_id for r in repo.listing(conn, host="host-b")] == [b]
        assert repo.held(conn, "host-b") == [b] and repo.held(conn, "host-a") == [] and repo.held(conn, None) == [b]
        assert {(c.state, c.hostname, c.count) for c in repo.counts(conn)} == {
            (RepoState.PROCESSING, "host-a", 1), (RepoState.REJECTED_SHUTTING_DOWN, "host-b", 1)}


def test_held_is_oldest_first_and_honours_a_hand_edited_hostname(engine: Engine, tmp_path: Path) -> None:
    ids = [_version(engine, tmp_path, n=n) for n in (1, 2, 3)]
    with engine.begin() as conn:
        for rid in reversed(ids):
            repo.append_state(conn, rid, RepoState.REJECTED_SHUTTING_DOWN, "host-b")
    # The old runbook: set the latest row's hostname to this server in SQL.
    execute(engine, "UPDATE stash_engine_repo_queue_states SET hostname = 'host-a' WHERE resource_id = :r", r=ids[1])
    with engine.connect() as conn:
        assert repo.held(conn, "host-b") == [ids[2], ids[0]]
        assert repo.held(conn, "host-a") == [ids[1]]
        assert repo.held(conn, None) == [ids[2], ids[1], ids[0]]


def test_submission_logs_are_masked_and_capped(engine: Engine, tmp_path: Path) -> None:
    rid = _version(engine, tmp_path)
    with engine.begin() as conn:
        repo.add_log(conn, rid, "POST https://dryad:pa55w0rd-merritt@merritt.example/object/update",
                     "Authorization: Basic ZHJ5YWQ6cGFzcw==\n" + "y" * (repo.LOG_TEXT_MAX + 500))
    with engine.connect() as conn:
        [log] = repo.logs(conn, rid)
    assert "pa55w0rd-merritt" not in (log.archive_submission_request or "")
    assert "ZHJ5YWQ6cGFzcw==" not in (log.archive_response or "")
    assert len(log.archive_response or "") <= repo.LOG_TEXT_MAX


def test_download_uri_and_the_ark_of_an_earlier_version(engine: Engine, tmp_path: Path) -> None:
    v1, v2 = _version(engine, tmp_path, n=1), _version(engine, tmp_path, n=2)
    other = _version(engine, tmp_path, doi="10.5061/dryad.other", n=3)
    ark = "ark:/13030/m5abc123"
    uri = repo.download_uri_for("https://merritt.example/", ark)
    assert uri == "https://merritt.example/d/ark%3A%2F13030%2Fm5abc123"
    assert repo.ark_of(uri) == ark and repo.ark_of("https://merritt.example/d/ark:/13030/m5x") == "ark:/13030/m5x"
    assert repo.ark_of(None) is None and repo.ark_of("https://elsewhere/") is None
    with engine.begin() as conn:
        assert repo.previous_ark(conn, v2) is None
        repo.set_download_uri(conn, v1, uri)
    with engine.connect() as conn:
        assert repo.download_uri(conn, v1) == uri
        assert repo.previous_ark(conn, v2) == ark and repo.previous_ark(conn, v1) == ark
        assert repo.previous_ark(conn, other) is None


def test_lock_resource_says_whether_the_version_exists(engine: Engine, tmp_path: Path) -> None:
    rid = _version(engine, tmp_path)
    with engine.begin() as conn:
        assert repo.lock_resource(conn, rid)
        assert not repo.lock_resource(conn, rid + 1000)
