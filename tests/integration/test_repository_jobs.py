"""The deposit job and the completion check against the fake Merritt and a static server over the
staging folder, on SQLite and MariaDB; jobs run in this process by the worker's rules."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue.repository import jobs as rjobs
from dqueue.repository.states import RepoState
from dqueue.repository.submit import deposit_job, submit
from dqueue.store.queue import transaction
from dqueue.testing.merritt import FakeMerritt, JobStatus
from dqueue.testing.static import StaticServer
from tests.helpers import rows, scalar
from tests.repository_support import (
    PASSWORD,
    add_version,
    download_uri,
    latest,
    logs,
    menv,
    run_due,
    run_until,
    settings_for,
    states,
)

LOCAL_ID = "doi:10.5061/dryad.repo123"


@pytest.fixture
def merritt_visible_after() -> float:
    return 0.3  # longer than one check_interval (0.2 s): the first check finds no version yet


@pytest.fixture
def env(merritt: FakeMerritt, web: StaticServer, tmp_path: Path) -> dict[str, str]:
    return menv(merritt, web, tmp_path / "staging", tmp_path / "flags")


def posts(merritt: FakeMerritt) -> list[int]:
    return [status for method, path, status in merritt.requests if method == "POST"]


def completed(engine: Engine, rid: int) -> bool:
    return latest(engine, rid) in (RepoState.COMPLETED, RepoState.ERRORED)


def test_a_version_is_deposited_checked_and_completed_with_its_ark(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"counts.csv": b"a,b\n1,2\n", "readme.txt": b"hello"})
    assert submit(engine, rid, s).job_id is not None
    run_due(engine, s)
    assert states(engine, rid) == ["enqueued", "processing"]  # accepted: processing until seen
    assert len(merritt.deposits) == 1
    fields = merritt.deposits[0].fields
    assert {k: fields[k] for k in ("profile", "localIdentifier", "submitter", "responseForm", "retainTargetURL")} \
        == {"profile": "cdl_dryad_content", "localIdentifier": LOCAL_ID, "submitter": "dryad/Dryad",
            "responseForm": "json", "retainTargetURL": "true"}
    assert "primaryIdentifier" not in fields
    assert [e.file_name for e in merritt.deposits[0].entries] == ["counts.csv", "readme.txt", "mrt-datacite.xml"]
    check_job = scalar(engine, "SELECT handler FROM delayed_jobs")
    assert rjobs.CHECK_JOB in check_job

    run_until(engine, s, lambda: completed(engine, rid))
    assert states(engine, rid) == ["enqueued", "processing", "completed"]
    (obj_ark,) = {d.ark for d in merritt.deposits}
    assert obj_ark and download_uri(engine, rid) == f"{merritt.url}/d/{obj_ark.replace(':', '%3A').replace('/', '%2F')}"
    request = logs(engine, rid)[0].archive_submission_request or ""
    assert "localIdentifier=doi:10.5061/dryad.repo123" in request and "#%checkm_0.7" in request
    assert not (tmp_path / "staging" / str(rid)).exists()  # cleaned up once Merritt holds it
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_a_second_version_names_the_ark_and_lists_deleted_files(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, env)
    r1 = add_version(engine, tmp_path / "v1", {"a.csv": b"1", "b.csv": b"2"})
    submit(engine, r1, s)
    run_until(engine, s, lambda: completed(engine, r1))
    r2 = add_version(engine, tmp_path / "v2", {"a.csv": b"1 changed", "b.csv": None})
    submit(engine, r2, s)
    run_until(engine, s, lambda: completed(engine, r2))
    assert latest(engine, r2) is RepoState.COMPLETED
    second = merritt.deposits[1]
    assert second.fields["primaryIdentifier"] == merritt.deposits[0].ark
    assert [e.file_name for e in second.entries] == ["a.csv", "mrt-datacite.xml", "mrt-delete.txt"]
    assert merritt.versions(LOCAL_ID) == [1, 2]


def test_5xx_is_retried_then_the_deposit_goes_through(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    merritt.inject("503", method="POST", path="/object/update", times=2)
    submit(engine, rid, s)
    run_until(engine, s, lambda: completed(engine, rid))
    assert posts(merritt) == [503, 503, 200]
    assert states(engine, rid) == ["enqueued", "processing", "completed"]


def test_401_is_errored_at_once_with_the_answer_and_no_password_anywhere(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    merritt.inject("401", method="POST", path="/object/update")
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    submit(engine, rid, s)
    run_due(engine, s)
    assert posts(merritt) == [401]
    assert states(engine, rid) == ["enqueued", "processing", "errored"]
    (entry,) = logs(engine, rid)
    assert "401" in (entry.archive_response or "")
    (job,) = rows(engine, "SELECT failed_at, last_error FROM delayed_jobs")
    assert job.failed_at is not None and "401" in job.last_error
    everything = " ".join(str(v) for table in ("stash_engine_submission_logs", "stash_engine_repo_queue_states",
                                               "delayed_jobs") for r in rows(engine, f"SELECT * FROM {table}")
                          for v in r)
    assert PASSWORD not in everything


def test_no_public_base_url_fails_at_once_with_the_reason(
        engine: Engine, db_url: str, merritt: FakeMerritt, tmp_path: Path) -> None:
    s = settings_for(db_url, menv(merritt, None, tmp_path / "staging", tmp_path / "flags"))
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    submit(engine, rid, s)
    run_due(engine, s)
    assert posts(merritt) == []
    assert states(engine, rid) == ["enqueued", "errored"]  # never processing: nothing was sent
    (job,) = rows(engine, "SELECT last_error FROM delayed_jobs")
    assert "merritt_public_base_url is not set" in job.last_error
    assert "merritt_public_base_url is not set" in (logs(engine, rid)[-1].archive_response or "")


def test_a_version_never_seen_is_errored_after_the_check_limit(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, {**env, "DQUEUE_MERRITT_CHECK_LIMIT": "1"})
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    (tmp_path / "v1" / "a.csv").write_bytes(b"2")  # changed after it was listed: Merritt's fetch fails
    submit(engine, rid, s)
    run_due(engine, s)
    (tmp_path / "v1" / "a.csv").unlink()
    run_until(engine, s, lambda: completed(engine, rid))
    merritt.wait_idle()
    assert merritt.deposits[0].status is JobStatus.FAILED
    assert states(engine, rid) == ["enqueued", "processing", "errored"]
    assert "merritt_check_limit" in (logs(engine, rid)[-1].archive_response or "")
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_a_duplicate_job_is_dropped_and_force_sends_again(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    submit(engine, rid, s)
    run_until(engine, s, lambda: completed(engine, rid))
    # a stray job for a version sent already (written as a lost duplicate would be)
    from dqueue.store.queue import enqueue
    with transaction(engine) as conn:
        enqueue(conn, deposit_job(rid, False))
    run_due(engine, s)
    assert len(merritt.deposits) == 1
    assert states(engine, rid) == ["enqueued", "processing", "completed"]

    forced = submit(engine, rid, s, force=True)
    assert forced.job_id is not None
    run_until(engine, s, lambda: latest(engine, rid) is RepoState.COMPLETED and len(states(engine, rid)) > 3)
    assert len(merritt.deposits) == 2
    merritt.wait_idle()
    assert merritt.versions(LOCAL_ID) == [1, 2]  # the re-send is Merritt's version 2: completed once seen
    assert "versions [1, 2]" in (logs(engine, rid)[-1].archive_response or "")  # not completed by version 1
    assert states(engine, rid) == ["enqueued", "processing", "completed", "enqueued", "processing", "completed"]
    assert any("forced re-send" in (entry.archive_submission_request or "") for entry in logs(engine, rid))


def test_the_hold_marker_at_the_jobs_turn_holds_it_and_sends_nothing(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    submit(engine, rid, s)
    (tmp_path / "flags").mkdir(exist_ok=True)
    (tmp_path / "flags" / "hold-submissions.txt").touch()
    run_due(engine, s)
    assert states(engine, rid) == ["enqueued", "rejected_shutting_down"]
    (held,) = rows(engine, "SELECT hostname FROM stash_engine_repo_queue_states ORDER BY id DESC LIMIT 1")
    assert held.hostname == s.hostname
    assert merritt.requests == []
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_a_job_that_comes_back_after_processing_checks_instead_of_sending(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    """What a worker killed mid-POST leaves: processing written by the job, which runs again."""
    s = settings_for(db_url, env)
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    merritt.inject("reset", method="POST", path="/object/update")  # an answer that never comes
    job_id = submit(engine, rid, s).job_id
    with transaction(engine) as conn:  # the job got as far as processing, then its worker died
        from dqueue.repository import store
        store.append_state(conn, rid, RepoState.PROCESSING, s.hostname, job_id)
    run_due(engine, s)
    assert posts(merritt) == []  # never sent again
    assert "not sent again" in (logs(engine, rid)[-1].archive_response or "")
    assert rjobs.CHECK_JOB in scalar(engine, "SELECT handler FROM delayed_jobs")


def test_a_deposit_left_unanswered_is_not_resent_and_the_check_decides(
        engine: Engine, db_url: str, merritt: FakeMerritt, env: dict[str, str], tmp_path: Path) -> None:
    s = settings_for(db_url, {**env, "DQUEUE_MERRITT_CHECK_LIMIT": "1"})
    rid = add_version(engine, tmp_path / "v1", {"a.csv": b"1"})
    merritt.inject("reset", method="POST", path="/object/update")  # dropped: Merritt queued nothing
    submit(engine, rid, s)
    run_due(engine, s)
    assert posts(merritt) == [0]  # one try, never repeated
    assert states(engine, rid) == ["enqueued", "processing"]
    assert "may have arrived" in (logs(engine, rid)[-1].archive_response or "")
    run_until(engine, s, lambda: completed(engine, rid))
    assert posts(merritt) == [0]
    assert states(engine, rid) == ["enqueued", "processing", "errored"]
