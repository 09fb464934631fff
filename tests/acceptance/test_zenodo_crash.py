"""A copy whose worker is SIGKILLed mid-upload resumes without sending finished files again."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import Engine

from dqueue.store import processes
from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo import jobs as zjobs
from dqueue.zenodo import store as zenodo_copies
from tests.helpers import scalar, wait_until
from tests.workers import worker
from tests.zenodo_support import TOKEN, add_resource, copies, file_entry, manifest_for, uploads, zenv


def test_sigkill_mid_upload_resumes_and_keeps_finished_files(engine: Engine, db_url: str, fake: FakeZenodo,
                                                             tmp_path: Path) -> None:
    files = [file_entry(tmp_path, name, name.encode() * 50000) for name in ("a.bin", "b.bin", "c.bin")]
    rid = add_resource(engine, manifest_for("10.5061/dryad.kill", files))
    zjobs.send(engine, rid)
    fake.inject("slow", method="PUT", path=r"/b\.bin$", times=1, delay=30)  # hangs while we kill
    log = tmp_path / "worker.log"
    with worker(db_url, log, **zenv(fake, tmp_path / "flags")):
        wait_until(lambda: "b.bin" in (zenodo_copies.error_info(engine, 1) or ""), 15,
                   message="the upload of b.bin to start")
        (pid,) = [p["pid"] for p in processes.list_processes(engine) if p["kind"] == "worker"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: [c.state for c in copies(engine)] == ["finished"], 60,
                   message="the copy to resume in a new worker and finish")
    (copy,) = copies(engine)
    assert copy.retries == 2  # two real starts: the killed one and the resumed one
    assert len([r for r in uploads(fake, "a.bin") if r[2] == 201]) == 1  # not sent again
    assert sorted(fake.depositions[copy.deposition_id].files) == ["a.bin", "b.bin", "c.bin"]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
    text = log.read_text()
    assert "killed by SIGKILL" in text and "resuming" in text
    assert TOKEN not in text and TOKEN not in (zenodo_copies.error_info(engine, copy.id) or "")
