"""Where the same-host doorbell lives: never relative to the working directory (issue 7)."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from dqueue import config, doorbell


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No writable /run/dqueue: the default is the user's private directory under this tmp."""
    monkeypatch.setattr(doorbell, "SYSTEM_BASE", tmp_path / "no-run" / "dqueue")
    monkeypatch.setattr(doorbell.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"dqueue-{os.geteuid()}"


def test_the_default_does_not_follow_the_working_directory(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    db = tmp_path / "x" / "q.sqlite3"
    url = "mysql+pymysql://u@db.example/q"
    monkeypatch.chdir(tmp_path / "x")
    from_x = [config.Settings(database_url=u).doorbell_folder() for u in (url, f"sqlite:///{db}", "sqlite:///q.sqlite3")]
    monkeypatch.chdir(tmp_path / "y")
    from_y = [config.Settings(database_url=u).doorbell_folder() for u in (url, f"sqlite:///{db}", "sqlite:///../x/q.sqlite3")]
    assert from_x == from_y  # same database, same bell, from any directory
    assert all(folder is not None and folder.is_absolute() for folder in from_x)
    # Two files that share a relative name are two databases: two bells.
    assert config.Settings(database_url="sqlite:///q.sqlite3").doorbell_folder() != from_x[2]
    assert config.Settings().doorbell_folder() != from_x[2]  # the default var/dqueue.sqlite3 of y


def test_the_private_default_is_made_0700(private_tmp: Path) -> None:
    folder = doorbell.directory("", "sqlite:////srv/q.sqlite3")
    assert folder is not None and folder.parent == private_tmp / "doorbell"
    assert stat.S_IMODE(os.stat(private_tmp).st_mode) == 0o700


def test_a_private_default_made_by_someone_else_is_refused(private_tmp: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    other = os.geteuid() + 4242
    squatted = private_tmp.with_name(f"dqueue-{other}")
    squatted.mkdir(mode=0o777)  # owned by the test's real uid, not by the uid that will look
    monkeypatch.setattr(os, "geteuid", lambda: other)
    assert doorbell.directory("", "sqlite:////srv/q.sqlite3") is None  # polling only
    assert doorbell.Doorbell.open(None) is None


def test_run_dqueue_when_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run" / "dqueue"
    run.mkdir(parents=True)
    monkeypatch.setattr(doorbell, "SYSTEM_BASE", run)
    monkeypatch.setattr(doorbell.os, "access", lambda path, mode: path == run)
    folder = doorbell.directory("", "sqlite:////srv/q.sqlite3")
    assert folder is not None and folder.parent == run / "doorbell"


def test_explicit_settings_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert doorbell.directory("bells", "sqlite://") == (tmp_path / "bells" / doorbell.database_key("sqlite://"))
    assert doorbell.directory("off", "sqlite:///q.sqlite3") is None
    assert doorbell.database_key("not a url") == doorbell.database_key("not a url")  # never raises
