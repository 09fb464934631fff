"""The drain markers operators already know: ``defer_jobs.txt`` and ``hold-submissions.txt``.

While a marker exists, the long jobs it names park themselves when they reach their turn
(Zenodo copies become ``deferred``, repository submissions ``rejected_shutting_down``) and jobs
already running finish.  ``long_jobs drain`` creates them, ``long_jobs restart`` removes them and
runs the restart hooks that the handlers register, which re-enqueue what was parked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sqlalchemy import Engine

DEFER_JOBS = "defer_jobs.txt"  # Zenodo copies
HOLD_SUBMISSIONS = "hold-submissions.txt"  # repository submissions
MARKERS = (DEFER_JOBS, HOLD_SUBMISSIONS)

RestartHook = Callable[[Engine], str]  # re-enqueues parked work; returns a line for the operator
StatusHook = Callable[[Engine], dict[str, object]]  # a section of 'long_jobs status'

_restart_hooks: dict[str, RestartHook] = {}
_status_hooks: dict[str, StatusHook] = {}


def marker(flag_dir: str | Path, name: str) -> Path:
    return Path(flag_dir) / name


def is_set(flag_dir: str | Path, name: str) -> bool:
    return marker(flag_dir, name).exists()


def drain(flag_dir: str | Path) -> list[Path]:
    """Create both markers (idempotent); returns their paths.  OSError (a read-only directory)
    leaves none that this call created: a half drain would park one kind of job and not the other."""
    Path(flag_dir).mkdir(parents=True, exist_ok=True)
    paths = [marker(flag_dir, name) for name in MARKERS]
    created: list[Path] = []
    try:
        for path in paths:
            if not path.exists():
                path.touch()
                created.append(path)
    except OSError:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return paths


def clear(flag_dir: str | Path) -> list[Path]:
    """Remove both markers; returns the ones that existed (a missing one is not an error)."""
    removed = []
    for name in MARKERS:
        path = marker(flag_dir, name)
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def on_restart(name: str) -> Callable[[RestartHook], RestartHook]:
    def register(fn: RestartHook) -> RestartHook:
        _restart_hooks[name] = fn
        return fn
    return register


def on_status(name: str) -> Callable[[StatusHook], StatusHook]:
    def register(fn: StatusHook) -> StatusHook:
        _status_hooks[name] = fn
        return fn
    return register


def restart_hooks() -> dict[str, RestartHook]:
    return dict(_restart_hooks)


def status_hooks() -> dict[str, StatusHook]:
    return dict(_status_hooks)
