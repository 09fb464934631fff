"""Secrets never reach last_error, error_info, a copy's note or the log, whatever job raises them
(issue 7, point 7): real workers (``dqueue worker --burst``) on SQLite and MariaDB."""
from __future__ import annotations

import socket
from pathlib import Path

from sqlalchemy import Engine

from dqueue import client
from dqueue.zenodo import jobs as zjobs
from dqueue.zenodo import store as zenodo_copies
from tests import leaky_jobs
from tests.helpers import job_rows, run_cli
from tests.workers import FAST
from tests.zenodo_support import (
    TOKEN,
    add_resource,
    assert_secret_absent,
    copies,
    manifest_for,
    zenv,
)

PASSWORD = "PASSWORD-in-source-4711"


def test_a_generic_jobs_error_is_masked_in_last_error_and_the_log(engine: Engine, db_url: str) -> None:
    jobs_ = client.Client(engine=engine)
    failed = jobs_.enqueue("t.leak", {})
    retried = jobs_.enqueue("t.leak_later", {})
    result = run_cli(["--import", "tests.leaky_jobs", "worker", "--burst"], db_url,
                     **{**FAST, "DQUEUE_ZENODO_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr[-3000:]
    table = job_rows(engine)
    assert table[failed]["failed_at"] is not None and table[retried]["failed_at"] is None
    for job_id in (failed, retried):
        error = table[job_id]["last_error"]
        assert "RuntimeError: failed with token hidden" in error, error  # masked, not dropped
        assert "Authorization: Bearer hidden" in error and "https://u:***@h.example/x" in error
    assert "leak.start token=hidden" in result.stderr
    for secret in (TOKEN, *leaky_jobs.UNREGISTERED):
        assert_secret_absent(engine, secret, result.stdout, result.stderr)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_source_urls_password_is_masked_in_the_copys_log_note_and_last_error(
        engine: Engine, db_url: str, fake: object, tmp_path: Path) -> None:
    source = f"http://alice:{PASSWORD}@127.0.0.1:{_closed_port()}/file"
    files = [{"name": "f.csv", "size": 10, "kind": "data", "state": "created", "source": source}]
    rid = add_resource(engine, manifest_for("10.5061/dryad.mask1", files))
    zjobs.send(engine, rid)
    env = zenv(fake, tmp_path / "flags", DQUEUE_ZENODO_MAX_RETRIES="1")  # type: ignore[arg-type]
    result = run_cli(["worker", "--burst"], db_url, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    (copy,) = copies(engine)
    log = zenodo_copies.error_info(engine, copy.id) or ""
    assert copy.state == "error" and "Zenodo final failure" in log, (copy, log[-2000:])
    assert "alice:***@127.0.0.1" in log  # the source is still named, without its password
    assert copy.note and "no automatic retry left" in copy.note
    # The source itself keeps its password (the next start needs it); nothing written about it does.
    stored = [log, copy.note, *(r["last_error"] or "" for r in job_rows(engine).values())]
    for text in (*stored, result.stdout, result.stderr):
        assert PASSWORD not in text
    assert "alice:***@127.0.0.1" in result.stderr
