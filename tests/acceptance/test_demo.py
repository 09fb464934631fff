"""``dqueue demo`` (what ``make demo`` runs) does real work and ends with nothing left over."""
from __future__ import annotations

from pathlib import Path

from tests.helpers import ROOT, run_cli


def test_demo_runs_the_sample_jobs_and_the_zenodo_copies(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(ROOT / "tests")  # the demo starts the fake Zenodo from a checkout
    result = run_cli(["demo", "--files", "3"], sqlite_url, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "jobs completed, 0 waiting, 0 failed" in out
    assert "made it on the second try" in out
    for version in (1, 2, 3):
        assert f"version {version} finished, retries 1" in out
