"""``long_jobs drain|status|restart`` through the real CLI, on both databases."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dqueue import client
from tests import sample_jobs  # noqa: F401
from tests.helpers import cli_env, run_cli


def long_jobs(args: list[str], db_url: str, flag_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dqueue.cli.long_jobs import main; main()",
                           "--import", "tests.sample_jobs", *args],
                          env=cli_env(db_url, DQUEUE_FLAG_DIR=str(flag_dir)),
                          capture_output=True, text=True, timeout=60)


def test_drain_status_restart(engine: object, db_url: str, tmp_path: Path) -> None:
    flag_dir = tmp_path / "flags"
    client.Client(engine=engine).enqueue("t.record", {"path": "/dev/null", "token": "x"})  # type: ignore[arg-type]
    drained = long_jobs(["drain"], db_url, flag_dir)
    assert drained.returncode == 0, drained.stderr
    assert (flag_dir / "defer_jobs.txt").exists() and (flag_dir / "hold-submissions.txt").exists()
    assert long_jobs(["drain"], db_url, flag_dir).returncode == 0  # twice is fine

    status = long_jobs(["status"], db_url, flag_dir)
    assert status.returncode == 0 and "defer_jobs.txt: SET" in status.stdout
    assert "1 ready" in status.stdout and "sample section: parked 0" in status.stdout
    data = json.loads(long_jobs(["status", "--json"], db_url, flag_dir).stdout)
    assert data["markers"] == {"defer_jobs.txt": True, "hold-submissions.txt": True}
    assert data["total"]["ready"] == 1 and data["sample section"] == {"parked": 0}

    restarted = long_jobs(["restart"], db_url, flag_dir)
    assert restarted.returncode == 0, restarted.stderr
    assert not (flag_dir / "defer_jobs.txt").exists() and not (flag_dir / "hold-submissions.txt").exists()
    assert "sample parked jobs: re-enqueued 0" in restarted.stdout
    again = long_jobs(["restart"], db_url, flag_dir)
    assert again.returncode == 0 and "no markers were set" in again.stdout


def test_status_on_an_uninitialised_database_says_what_to_run(db_url: str, tmp_path: Path) -> None:
    result = long_jobs(["status"], db_url, tmp_path)
    assert result.returncode == 1 and "dqueue db init" in result.stderr
    assert run_cli(["db", "status"], db_url).returncode == 1
