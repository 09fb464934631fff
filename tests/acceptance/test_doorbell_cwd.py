"""An application enqueuing from its own directory wakes a daemon started in another (issue 7).

The default doorbell directory used to be ``<pid_dir>/doorbell`` with a relative ``pid_dir``, so
an enqueue from any other working directory was only found by the next poll.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import Engine

from dqueue import doorbell
from tests.helpers import job_rows, run_cli, start_cli, wait_until

SAMPLES = ["--import", "dqueue.samples"]
SLOW_POLL = {"DQUEUE_SLEEP_DELAY": "30", "DQUEUE_HEARTBEAT_INTERVAL": "0.5", "DQUEUE_STALE_AFTER": "3",
             "DQUEUE_GRACE_PERIOD": "5"}


def as_seen_from(db_url: str, cwd: Path) -> str:
    """The same database, as an application in ``cwd`` would name it (a relative SQLite path)."""
    if not db_url.startswith("sqlite:///"):
        return db_url
    return "sqlite:///" + os.path.relpath(db_url[len("sqlite:///"):], cwd)


def test_an_enqueue_from_another_directory_wakes_the_workers(db_url: str, engine: Engine,
                                                            tmp_path: Path) -> None:
    daemon_dir, app_dir = tmp_path / "srv" / "daemon", tmp_path / "app"
    daemon_dir.mkdir(parents=True)
    app_dir.mkdir()
    daemon_url, app_url = as_seen_from(db_url, daemon_dir), as_seen_from(db_url, app_dir)
    assert db_url.startswith("mysql") or daemon_url != app_url  # two spellings of one SQLite file
    bell = doorbell.directory("", db_url)
    assert bell is not None
    out, log = tmp_path / "out.txt", tmp_path / "worker.log"
    proc = start_cli([*SAMPLES, "worker"], daemon_url, cwd=daemon_dir, log=log, **SLOW_POLL)
    try:
        wait_until(lambda: list(bell.glob("*.sock")), 15, message="the worker's doorbell")
        # The worker polls every 30 s (±20 %): only the doorbell can start either job within 10 s.
        # Two jobs: the second comes after a claim that found nothing, with the worker asleep.
        for line in ("first", "second"):
            result = run_cli([*SAMPLES, "enqueue", "sample.append", "--json", "--args",
                              json.dumps({"path": str(out), "line": line})], app_url, cwd=app_dir)
            assert result.returncode == 0, result.stderr
            job_id = int(json.loads(result.stdout)["id"])
            wait_until(lambda i=job_id: i not in job_rows(engine), 10, message=f"the {line} job to run")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert out.read_text().splitlines() == ["first", "second"], log.read_text()[-2000:]

