"""The copy-start decision and ownership rules of store/zenodo_copies, on SQLite and MariaDB."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue.handlers.zenodo import jobs as zjobs
from dqueue.store import zenodo_copies
from tests.helpers import execute, scalar
from tests.zenodo_support import add_resource, file_entry, manifest_for


def _copy(engine: Engine, tmp_path: Path, version: int = 1) -> zenodo_copies.Copy:
    rid = add_resource(engine, manifest_for("10.5061/dryad.store", [file_entry(tmp_path, f"f{version}", b"x")],
                                            version=version))
    return zjobs.send(engine, rid).copy


def test_only_the_owning_job_runs_a_copy_and_writes_to_it(engine: Engine, tmp_path: Path) -> None:
    copy = _copy(engine, tmp_path)
    assert copy.job_id is not None
    started = zenodo_copies.begin(engine, copy.id, copy.job_id, defer=False, max_retries=3)
    assert started.action == "run" and started.copy is not None and started.copy.retries == 1
    # A second job for the same copy (a hand edit, a double restart) while the owner's row exists:
    other = zenodo_copies.begin(engine, copy.id, copy.job_id + 100, defer=False, max_retries=3)
    assert other.action == "duplicate"
    with pytest.raises(zenodo_copies.CopyLost):
        zenodo_copies.save(engine, copy.id, copy.job_id + 100, deposition_id=5)
    zenodo_copies.save(engine, copy.id, copy.job_id, deposition_id=5)
    # The owner was restarted after a crash: same job, still replicating -> a resumed start.
    again = zenodo_copies.begin(engine, copy.id, copy.job_id, defer=False, max_retries=3)
    assert again.action == "run" and again.resumed and again.copy is not None and again.copy.retries == 2
    # Its job row deleted by an operator (cancelled): another job may take the copy over.
    execute(engine, "DELETE FROM delayed_jobs")
    taken = zenodo_copies.begin(engine, copy.id, 4242, defer=False, max_retries=3)
    assert taken.action == "run" and taken.copy is not None and taken.copy.job_id == 4242


def test_defer_and_exhausted_retries_make_no_start(engine: Engine, tmp_path: Path) -> None:
    copy = _copy(engine, tmp_path)
    assert copy.job_id is not None
    parked = zenodo_copies.begin(engine, copy.id, copy.job_id, defer=True, max_retries=3)
    assert parked.action == "deferred"
    assert scalar(engine, "SELECT state FROM stash_engine_zenodo_copies") == "deferred"
    execute(engine, "UPDATE stash_engine_zenodo_copies SET state = 'error', retries = 3, job_id = NULL")
    stopped = zenodo_copies.begin(engine, copy.id, copy.job_id, defer=False, max_retries=3)
    assert stopped.action == "stopped"
    assert scalar(engine, "SELECT retries FROM stash_engine_zenodo_copies") == 3


def test_the_log_is_appended_and_cut_in_the_middle_when_huge(engine: Engine, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy(engine, tmp_path)
    monkeypatch.setattr(zenodo_copies, "LOG_LIMIT", 1000)
    monkeypatch.setattr(zenodo_copies, "LOG_HEAD", 100)
    monkeypatch.setattr(zenodo_copies, "LOG_TAIL", 300)
    zenodo_copies.append_log(engine, copy.id, "first line\n")
    for i in range(40):
        zenodo_copies.append_log(engine, copy.id, f"entry {i:03d} " + "." * 30 + "\n")
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert log.startswith("first line\n") and log.endswith("entry 039 " + "." * 30 + "\n")
    assert "[... earlier log cut ...]" in log and len(log) < 1100
