"""The copy-start decision and ownership rules of store/zenodo_copies, on SQLite and MariaDB."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from dqueue.zenodo import jobs as zjobs
from dqueue.zenodo import store as zenodo_copies
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


def test_a_note_describes_the_current_state_only(engine: Engine, tmp_path: Path) -> None:
    first, second = _copy(engine, tmp_path, 1), _copy(engine, tmp_path, 2)
    assert first.job_id is not None and second.job_id is not None
    waiting = zenodo_copies.begin(engine, second.id, second.job_id, defer=False, max_retries=3)
    assert waiting.action == "wait" and f"copy {first.id} (" in waiting.note and "enqueued" in waiting.note
    # The predecessor runs, fails and will be started again: its note says so while it is in error.
    assert zenodo_copies.begin(engine, first.id, first.job_id, defer=False, max_retries=3).action == "run"
    zenodo_copies.fail(engine, first.id, first.job_id, "error: start 2 of 3 comes automatically in 600 s")
    assert zenodo_copies.get(engine, first.id).note.startswith("error: start 2 of 3")  # type: ignore[union-attr]
    # Started again, it is replicating: the note about the next start is over.
    assert zenodo_copies.begin(engine, first.id, first.job_id, defer=False, max_retries=3).action == "run"
    assert zenodo_copies.get(engine, first.id).note is None  # type: ignore[union-attr]
    zenodo_copies.finish(engine, first.id, first.job_id)
    done = zenodo_copies.get(engine, first.id)
    assert done is not None and (done.state, done.note) == ("finished", None)
    # The successor no longer names its finished predecessor as unfinished, even before it runs again.
    later = zenodo_copies.get(engine, second.id)
    assert later is not None and later.state == "enqueued" and later.note is None
    assert zenodo_copies.begin(engine, second.id, second.job_id, defer=False, max_retries=3).action == "run"
    assert zenodo_copies.get(engine, second.id).note is None  # type: ignore[union-attr]


def test_a_waiting_note_that_names_another_blocker_is_kept(engine: Engine, tmp_path: Path) -> None:
    first, second, third = (_copy(engine, tmp_path, v) for v in (1, 2, 3))
    assert first.job_id and second.job_id and third.job_id
    assert zenodo_copies.begin(engine, third.id, third.job_id, defer=False, max_retries=3).action == "wait"
    assert zenodo_copies.begin(engine, first.id, first.job_id, defer=False, max_retries=3).action == "run"
    zenodo_copies.finish(engine, first.id, first.job_id)
    assert zenodo_copies.begin(engine, third.id, third.job_id, defer=False, max_retries=3).action == "wait"
    note = zenodo_copies.get(engine, third.id).note  # type: ignore[union-attr]
    assert note and f"copy {second.id} (" in note


def test_deferred_copies_sent_again_drop_the_deferred_note(engine: Engine, tmp_path: Path) -> None:
    copy = _copy(engine, tmp_path)
    assert copy.job_id is not None
    zenodo_copies.begin(engine, copy.id, copy.job_id, defer=True, max_retries=3)
    assert (zenodo_copies.get(engine, copy.id).note or "").startswith("deferred")  # type: ignore[union-attr]
    (sent,) = zenodo_copies.enqueue_deferred(engine, zjobs.job_for)
    assert (sent.state, sent.note) == ("enqueued", None)


def test_notes_and_the_log_are_masked_where_they_are_stored(engine: Engine, tmp_path: Path) -> None:
    copy = _copy(engine, tmp_path)
    assert copy.job_id is not None
    zenodo_copies.begin(engine, copy.id, copy.job_id, defer=False, max_retries=3)
    zenodo_copies.append_log(engine, copy.id, "GET http://alice:PASSWORD-1@h/f Authorization: Bearer tok-2\n")
    zenodo_copies.fail(engine, copy.id, copy.job_id, "refused: http://alice:PASSWORD-1@h/f " + "x" * 10_000)
    found = zenodo_copies.get(engine, copy.id)
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert found is not None and found.note is not None
    assert "PASSWORD-1" not in found.note + log and "tok-2" not in log and "alice:***@h/f" in log
    assert len(found.note) <= zenodo_copies.NOTE_MAX


def test_publishing_with_nothing_staged_is_refused_also_from_the_console(engine: Engine, tmp_path: Path) -> None:
    from dqueue import models

    data_only = add_resource(engine, manifest_for("10.5061/dryad.pub", [file_entry(tmp_path, "a", b"1")]))
    with pytest.raises(zjobs.SendRefused, match="no software files and no staged software deposition"):
        zjobs.send(engine, data_only, "software", publish=True)
    models.bind(engine)
    with pytest.raises(zjobs.SendRefused, match="nothing to publish"):
        models.Resource.get(data_only).send_supp_to_zenodo(publish=True)
    assert scalar(engine, "SELECT COUNT(*) FROM stash_engine_zenodo_copies") == 0
    software = add_resource(engine, manifest_for("10.5061/dryad.pub", [
        file_entry(tmp_path, "a", b"1"), file_entry(tmp_path, "t.py", b"pass", kind="software")]))
    assert zjobs.send(engine, software, "software", publish=True).created  # waits for its staging copy
