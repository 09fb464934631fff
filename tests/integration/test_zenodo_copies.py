"""Zenodo copies end to end: real workers (the CLI) against the fake Zenodo, on SQLite and MariaDB."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo import jobs as zjobs
from dqueue.zenodo import store as zenodo_copies
from tests.helpers import execute, scalar
from tests.workers import burst
from tests.zenodo_support import (
    TOKEN,
    add_resource,
    assert_secret_absent,
    copies,
    file_entry,
    manifest_for,
    uploads,
    zenv,
)

DOI = "10.5061/dryad.abc123"


def test_data_copy_uploads_publishes_and_logs_every_request(engine: Engine, db_url: str, fake: FakeZenodo,
                                                            tmp_path: Path) -> None:
    files = [file_entry(tmp_path, "counts.csv", b"a,b\n1,2\n" * 1000),
             file_entry(tmp_path, "readme.txt", b"hello", digest="md5"),
             file_entry(tmp_path, "empty.txt", b"")]
    rid = add_resource(engine, manifest_for(DOI, files))
    sent = zjobs.send(engine, rid)
    assert sent.created and sent.copy.state == "enqueued" and sent.copy.job_id is not None

    result = burst(db_url, **zenv(fake, tmp_path / "flags"))
    assert result.returncode == 0, result.stderr

    (copy,) = copies(engine)
    assert (copy.state, copy.retries, copy.copy_type) == ("finished", 1, "data")
    dep = fake.depositions[copy.deposition_id]
    assert dep.state == "done"
    assert sorted(dep.files) == ["counts.csv", "readme.txt"]  # the empty file is skipped
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert "PUT" in log and "publish" in log and "zero-length" in log
    assert TOKEN not in log
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_send_twice_writes_one_row_and_one_job(engine: Engine, tmp_path: Path) -> None:
    rid = add_resource(engine, manifest_for(DOI, [file_entry(tmp_path, "a.csv", b"1")]))
    first = zjobs.send(engine, rid)
    second = zjobs.send(engine, rid)
    assert first.created and not second.created and second.copy.id == first.copy.id
    assert scalar(engine, "SELECT COUNT(*) FROM stash_engine_zenodo_copies") == 1
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 1
    assert scalar(engine, "SELECT id FROM delayed_jobs") == first.copy.job_id


def _software_versions(engine: Engine, tmp_path: Path, count: int) -> list[int]:
    """Versions 1..count of one dataset, each adding one software file (so each needs newversion)."""
    ids, files = [], []
    for v in range(1, count + 1):
        files = [{**f, "state": "copied"} for f in files]
        files.append(file_entry(tmp_path / f"v{v}", f"tool{v}.py", f"print({v})\n".encode() * 50, kind="software"))
        ids.append(add_resource(engine, manifest_for(DOI, files)))
    return ids


def test_versions_sent_in_reverse_order_all_finish_in_order(engine: Engine, db_url: str, fake: FakeZenodo,
                                                            tmp_path: Path) -> None:
    r1, r2, r3 = _software_versions(engine, tmp_path, 3)
    for rid in (r3, r2, r1):  # each version staged, then published: newversion from the last
        zjobs.send(engine, rid, "software", publish=True)
        zjobs.send(engine, rid, "software")
    result = burst(db_url, "-n", "2", **zenv(fake, tmp_path / "flags"))
    assert result.returncode == 0, result.stderr

    every = copies(engine)
    assert [(c.state, c.retries) for c in every] == [("finished", 1)] * 6  # waiting used no start
    done = {c.resource_id: c for c in every if c.copy_type == "software"}
    deps = [fake.depositions[done[r].deposition_id] for r in (r1, r2, r3)]
    assert all(d.state == "done" for d in deps)
    assert deps[0].id < deps[1].id < deps[2].id  # each version built on the one before
    assert len({d.conceptrecid for d in deps}) == 1
    assert [sorted(d.files) for d in deps] == [["tool1.py"], ["tool1.py", "tool2.py"],
                                               ["tool1.py", "tool2.py", "tool3.py"]]
    assert all(done[r].software_doi for r in (r1, r2, r3))
    assert "Items must replicate in order" not in (zenodo_copies.error_info(engine, done[r3].id) or "")


def test_a_later_version_waits_with_a_note_then_goes_on_its_own(engine: Engine, db_url: str, fake: FakeZenodo,
                                                               tmp_path: Path) -> None:
    r1, r2 = _software_versions(engine, tmp_path, 2)
    zjobs.send(engine, r2, "software")
    result = burst(db_url, **zenv(fake, tmp_path / "flags"))  # v2 cannot start: v1 was never sent
    assert result.returncode == 0, result.stderr
    (waiting,) = copies(engine)
    assert (waiting.state, waiting.retries) == ("enqueued", 0)
    assert waiting.note and "waiting for version 1" in waiting.note and f"resource {r1}" in waiting.note
    assert not [r for r in fake.requests if r[0] != "GET"]  # no Zenodo call was made for it
    assert scalar(engine, "SELECT attempts FROM delayed_jobs") == 0  # rescheduled, not retried

    zjobs.send(engine, r1, "software")
    execute(engine, "UPDATE delayed_jobs SET run_at = run_at")  # nothing else: v1's finish wakes v2
    result = burst(db_url, **zenv(fake, tmp_path / "flags"))
    assert result.returncode == 0, result.stderr
    assert {c.resource_id: (c.state, c.note) for c in copies(engine)} == {
        r1: ("finished", None), r2: ("finished", None)}


def _three_files(engine: Engine, tmp_path: Path) -> int:
    files = [file_entry(tmp_path, name, name.encode() * 20000) for name in ("a.csv", "b.csv", "c.csv")]
    return add_resource(engine, manifest_for(DOI, files))


def _run_until(db_url: str, env: dict[str, str], engine: Engine, states: set[str], rounds: int = 20) -> None:
    """Burst workers until every copy is in ``states`` (automatic retries are scheduled ahead)."""
    from tests.helpers import wait_until

    def settled() -> bool:
        result = burst(db_url, **env)
        assert result.returncode == 0, result.stderr
        return all(c.state in states for c in copies(engine))
    wait_until(settled, timeout=60, interval=0.2, message=f"copies in {states}")


def test_a_failed_copy_is_retried_automatically_and_resumes(engine: Engine, db_url: str, fake: FakeZenodo,
                                                            tmp_path: Path) -> None:
    rid = _three_files(engine, tmp_path)
    zjobs.send(engine, rid)
    fake.inject("reset", method="PUT", path=r"/b\.csv$", times=3)  # every try of b.csv in the first start
    env = zenv(fake, tmp_path / "flags", DQUEUE_LOG_LEVEL="DEBUG")
    result = burst(db_url, **env)
    assert result.returncode == 0, result.stderr
    (copy,) = copies(engine)
    assert (copy.state, copy.retries) == ("error", 1)
    assert copy.note and "comes automatically" in copy.note
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert "Zenodo final failure" in log and "Traceback" in log

    _run_until(db_url, env, engine, {"finished"})
    (copy,) = copies(engine)
    assert (copy.state, copy.retries) == ("finished", 2)
    assert copy.note is None  # not "start 2 of 3 comes automatically": that was the error state's
    assert_secret_absent(engine, TOKEN, result.stdout, result.stderr)
    stored = [r for r in uploads(fake, "a.csv") if r[2] == 201]
    assert len(stored) == 1, fake.requests  # the second start kept a.csv: same name, size and MD5
    assert "kept 'a.csv'" in (zenodo_copies.error_info(engine, copy.id) or "")
    assert sorted(fake.depositions[copy.deposition_id].files) == ["a.csv", "b.csv", "c.csv"]


def test_429_waits_for_retry_after_and_5xx_is_retried(engine: Engine, db_url: str, fake: FakeZenodo,
                                                      tmp_path: Path) -> None:
    rid = _three_files(engine, tmp_path)
    zjobs.send(engine, rid)
    fake.inject("429", method="PUT", path=r"/api/deposit/depositions/\d+$", times=1, retry_after=1)
    fake.inject("504", method="GET", times=1)
    fake.inject("500", method="PUT", path=r"/c\.csv$", times=1)
    result = burst(db_url, **zenv(fake, tmp_path / "flags"))
    assert result.returncode == 0, result.stderr
    (copy,) = copies(engine)
    assert (copy.state, copy.retries) == ("finished", 1)  # all absorbed within one start
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert "429" in log and "504" in log and "500" in log


def test_other_4xx_fails_at_once_and_retries_stop_at_three(engine: Engine, db_url: str, fake: FakeZenodo,
                                                           tmp_path: Path) -> None:
    rid = _three_files(engine, tmp_path)
    zjobs.send(engine, rid)
    env = zenv(fake, tmp_path / "flags", DQUEUE_ZENODO_TOKEN="wrong-token-" + "x" * 12)
    _run_until(db_url, env, engine, {"error"})
    wrong = env["DQUEUE_ZENODO_TOKEN"]
    from tests.helpers import wait_until
    wait_until(lambda: burst(db_url, **env) and scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0,
               timeout=60, interval=0.2, message="the job to give up after three starts")
    (copy,) = copies(engine)
    assert (copy.state, copy.retries) == ("error", 3)
    assert copy.note and "no automatic retry left" in copy.note
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert log.count("401") >= 3 and log.count("start ") == 3  # one request each: 4xx is not retried
    assert_secret_absent(engine, wrong)


def test_retries_set_by_hand_take_a_copy_out_of_automatic_retry(engine: Engine, db_url: str, fake: FakeZenodo,
                                                                tmp_path: Path) -> None:
    rid = _three_files(engine, tmp_path)
    zjobs.send(engine, rid)
    fake.inject("reset", method="PUT", path=r"/b\.csv$", times=3)
    env = zenv(fake, tmp_path / "flags", DQUEUE_ZENODO_RETRY_DELAY="30")
    assert burst(db_url, **env).returncode == 0
    assert [(c.state, c.retries) for c in copies(engine)] == [("error", 1)]
    execute(engine, "UPDATE stash_engine_zenodo_copies SET retries = 3")
    execute(engine, "UPDATE delayed_jobs SET run_at = created_at")  # its automatic start is due now
    assert burst(db_url, **env).returncode == 0
    assert [(c.state, c.retries) for c in copies(engine)] == [("error", 3)]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_publishing_files_identical_to_the_last_version_keeps_the_last_version(
        engine: Engine, db_url: str, fake: FakeZenodo, tmp_path: Path) -> None:
    tool = file_entry(tmp_path, "tool.py", b"print('same')\n", kind="software")
    r1 = add_resource(engine, manifest_for(DOI, [tool]))
    r2 = add_resource(engine, manifest_for(DOI, [tool]))  # re-uploaded, byte for byte the same
    for rid in (r1, r2):
        zjobs.send(engine, rid, "software")
        zjobs.send(engine, rid, "software", publish=True)
    assert burst(db_url, **zenv(fake, tmp_path / "flags")).returncode == 0

    rows = {(c.resource_id, c.copy_type): c for c in copies(engine)}
    assert {c.state for c in rows.values()} == {"finished"}
    first = rows[(r1, "software")]
    for kind in ("software", "software_publish"):
        assert rows[(r2, kind)].deposition_id == first.deposition_id
        assert rows[(r2, kind)].software_doi == first.software_doi
    assert rows[(r2, "software_publish")].note == "no changes in this version"
    assert len([d for d in fake.depositions.values() if d.state == "done"]) == 1


def test_a_file_carried_over_unchanged_is_not_uploaded_again(engine: Engine, db_url: str, fake: FakeZenodo,
                                                             tmp_path: Path) -> None:
    plain = {"name": "a.csv", "size": 3, "kind": "data", "source": str(tmp_path / "a.csv")}
    (tmp_path / "a.csv").write_bytes(b"abc")
    changed = file_entry(tmp_path, "b.csv", b"bbbb")
    r1 = add_resource(engine, manifest_for(DOI, [plain]))
    r2 = add_resource(engine, manifest_for(DOI, [{**plain, "state": "copied"}, changed]))
    r3 = add_resource(engine, manifest_for(DOI, [{**plain, "state": "created"}, {**changed, "state": "copied"}]))
    for rid in (r1, r2, r3):
        zjobs.send(engine, rid)
    assert burst(db_url, **zenv(fake, tmp_path / "flags")).returncode == 0
    assert [c.state for c in copies(engine)] == ["finished"] * 3
    # v2 said 'copied' (no digest): a.csv is kept. v3 said 'created' without a digest: same name and
    # size is not the same content, so it goes again; b.csv has a digest and is kept.
    assert len([r for r in uploads(fake, "a.csv") if r[2] == 201]) == 2
    assert len([r for r in uploads(fake, "b.csv") if r[2] == 201]) == 1


def test_a_version_without_file_changes_keeps_the_deposition_and_says_so(
        engine: Engine, db_url: str, fake: FakeZenodo, tmp_path: Path) -> None:
    tool = file_entry(tmp_path, "tool.py", b"print(1)\n", kind="software")
    r1 = add_resource(engine, manifest_for(DOI, [tool]))
    r2 = add_resource(engine, manifest_for(DOI, [{**tool, "state": "copied"}], title="Renamed"))
    zjobs.send(engine, r1, "software")
    zjobs.send(engine, r1, "software", publish=True)
    zjobs.send(engine, r2, "software")
    assert burst(db_url, **zenv(fake, tmp_path / "flags")).returncode == 0
    rows = {(c.resource_id, c.copy_type): c for c in copies(engine)}
    later = rows[(r2, "software")]
    assert later.state == "finished" and later.note == "no file changes in this version"
    assert later.deposition_id == rows[(r1, "software")].deposition_id
    assert len(fake.depositions) == 1  # no newversion for a metadata-only version
    assert "metadata changes only when it is published again" in (zenodo_copies.error_info(engine, later.id) or "")
