"""Drain markers are registered by capabilities; drain and clear act on every registered one."""
from __future__ import annotations

from pathlib import Path

import pytest

from dqueue import flags, jobs


def test_the_shipped_capabilities_register_the_runbook_markers() -> None:
    jobs.import_modules(jobs.BUILTIN_MODULES)
    registered = {m.file: m.capability for m in flags.markers()}
    assert registered["defer_jobs.txt"] == "zenodo"
    assert registered["hold-submissions.txt"] == "repository"


def test_drain_and_clear_cover_every_registered_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flags, "_markers", {})
    flags.register_marker("a.txt", "one", "parks a")
    flags.register_marker("b.txt", "two", "parks b")
    created = flags.drain(tmp_path / "flags")
    assert [p.name for p in created] == ["a.txt", "b.txt"] and all(p.exists() for p in created)
    assert flags.drain(tmp_path / "flags") == created  # idempotent
    assert [p.name for p in flags.clear(tmp_path / "flags")] == ["a.txt", "b.txt"]
    assert flags.clear(tmp_path / "flags") == [] and not list((tmp_path / "flags").iterdir())


def test_a_marker_is_a_plain_file_name() -> None:
    for bad in ("", "..", "x/y.txt"):
        with pytest.raises(ValueError, match="file name"):
            flags.register_marker(bad, "x", "nothing")
