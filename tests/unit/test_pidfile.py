"""The pidfile's lock decides whether a daemon runs; the pid written in it does not."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dqueue import pidfile


def test_the_lock_holder_runs_and_a_second_acquire_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pidfile, "ACQUIRE_PATIENCE", 0.0)
    path = tmp_path / "run" / "delayed_job.pid"
    lock = pidfile.acquire(path, os.getpid())
    try:
        assert path.read_text() == f"{os.getpid()}\n"
        state = pidfile.read_state(path)
        assert state.running and state.supervisor_alive and not state.stale and not state.orphans
        assert os.getpid() in state.holders
        with pytest.raises(pidfile.AlreadyRunning, match="already running"):
            pidfile.acquire(path, 12345)  # another open file description: the lock is taken
        assert not pidfile.remove_stale(path)  # locked: not stale, left alone
        assert path.exists()
    finally:
        lock.release()
    assert not path.exists() and not pidfile.is_locked(path)
    assert not pidfile.read_state(path).exists


def test_an_unlocked_pidfile_is_stale_whatever_pid_it_names(tmp_path: Path) -> None:
    path = tmp_path / "delayed_job.pid"
    path.write_text(f"{os.getpid()}\n")  # a live process, but it does not hold the lock
    state = pidfile.read_state(path)
    assert state.stale and not state.running and state.pid == os.getpid() and state.holders == ()
    assert pidfile.remove_stale(path) and not path.exists()


def test_a_longer_old_pid_is_overwritten_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "delayed_job.pid"
    path.write_text("4194304\nnoise\n")
    lock = pidfile.acquire(path, 7)
    try:
        assert path.read_text() == "7\n" and pidfile.read_state(path).pid == 7
    finally:
        lock.release()


def test_the_lock_fd_is_not_inherited_by_exec(tmp_path: Path) -> None:
    lock = pidfile.acquire(tmp_path / "delayed_job.pid", os.getpid())
    try:
        assert not os.get_inheritable(lock.fd)  # forked workers share it; exec'd job programs do not
    finally:
        lock.release()


def test_the_supervisors_death_leaves_orphans(tmp_path: Path) -> None:
    state = pidfile.PidState(tmp_path / "p", True, 999999999, True, (11, 12))
    assert state.running and not state.supervisor_alive and state.orphans == (11, 12)
    assert "still run after their supervisor" in str(pidfile.AlreadyRunning(state.pid, state.path, state.holders))
