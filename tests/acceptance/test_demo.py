"""``dqueue demo`` (what ``make demo`` runs) does real work and ends with nothing left over, also
from an installed package: the fake Zenodo it needs ships in ``dqueue.testing``."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _installed_cli(args: list[str], db_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``dqueue`` console script as an installed package runs it: outside the checkout, with
    nothing of the checkout on the path (the tests tree cannot be imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DQUEUE_") and k != "PYTHONPATH"}
    env["DQUEUE_DATABASE_URL"] = db_url
    script = Path(sys.executable).parent / "dqueue"
    return subprocess.run([str(script), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_demo_runs_the_sample_jobs_and_the_zenodo_copies_outside_a_checkout(sqlite_url: str,
                                                                           tmp_path: Path) -> None:
    assert not tmp_path.is_relative_to(ROOT)
    check = subprocess.run([str(Path(sys.executable).parent / "python"), "-c", "import tests"], cwd=tmp_path,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                           capture_output=True, text=True)
    assert check.returncode != 0, "the tests tree is importable: this would not test an installed package"
    result = _installed_cli(["demo", "--files", "3"], sqlite_url, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "fake Zenodo at http://127.0.0.1:" in out
    assert "jobs completed, 0 waiting, 0 failed" in out
    assert "made it on the second try" in out
    for version in (1, 2, 3):
        assert f"version {version} finished, retries 1" in out
    assert "fake Merritt at http://127.0.0.1:" in out
    history = out.split("stash_engine_repo_queue_states of resource", 1)[1]
    assert [line.split()[1] for line in history.splitlines()[1:4]] == ["enqueued", "processing", "completed"]
    assert "download URI: http://127.0.0.1:" in history and "/d/ark%3A%2F" in history
    assert re.search(r"batch_job_execution \d+: COMPLETED, exit message: Total item bank ids: 120, number of "
                     r"items requiring project webhook: 110, number of items updated: 120", out), out[-2000:]
    assert "Item Synchronization Process starting.  Job execution id: " in result.stderr
    assert (tmp_path / "var" / "demo").is_dir()  # it worked in the directory it was started in
    assert "No module named" not in result.stderr
