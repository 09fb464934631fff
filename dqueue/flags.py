"""Drain markers, registered by the capabilities whose long jobs they park.

Operators already know them: ``defer_jobs.txt`` (Zenodo, registered in dqueue/zenodo/jobs.py) and
``hold-submissions.txt`` (repository submissions, dqueue/repository/hold.py).  While a marker
exists, the long jobs it names park themselves when they reach their turn (Zenodo copies become
``deferred``, repository submissions ``rejected_shutting_down``) and jobs already running finish.
``long_jobs drain`` creates every registered marker, ``long_jobs restart`` removes them and runs
the restart hooks that the capabilities register, which re-enqueue what was parked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine


@dataclass(frozen=True)
class Marker:
    file: str  # its name in the flag directory, e.g. defer_jobs.txt
    capability: str  # who registered it: zenodo, repository
    parks: str  # what it does while set, for 'long_jobs status' and --help


_markers: dict[str, Marker] = {}


def register_marker(file: str, capability: str, parks: str) -> str:
    """Register a drain marker; returns its file name (the capability's constant)."""
    if "/" in file or file in ("", ".", ".."):
        raise ValueError(f"a marker is a file name, not {file!r}")
    _markers[file] = Marker(file, capability, parks)
    return file


def markers() -> list[Marker]:
    """Every registered marker, in registration order."""
    return list(_markers.values())

RestartHook = Callable[[Engine], str]  # re-enqueues parked work; returns a line for the operator
StatusHook = Callable[[Engine], dict[str, object]]  # a section of 'long_jobs status'



@dataclass(frozen=True)
class RestartScope:
    """Whose parked items 'long_jobs restart' re-enqueues, for a capability whose parked items
    belong to a host (repository submissions): this host's (``from_host`` = ``hostname``, the
    default), another host's (``--from-host``) or every host's (``from_host`` None, ``--all-hosts``).
    Re-enqueued items are recorded under ``hostname``, the host that ran the restart."""
    hostname: str
    from_host: str | None


ScopedRestartHook = Callable[[Engine, RestartScope], str]

_restart_hooks: dict[str, RestartHook] = {}
_scoped_restart_hooks: dict[str, ScopedRestartHook] = {}
_status_hooks: dict[str, StatusHook] = {}


def marker(flag_dir: str | Path, name: str) -> Path:
    return Path(flag_dir) / name


def is_set(flag_dir: str | Path, name: str) -> bool:
    return marker(flag_dir, name).exists()


def drain(flag_dir: str | Path) -> list[Path]:
    """Create every registered marker (idempotent); returns their paths.  OSError (a read-only
    directory) leaves none that this call created: a half drain would park one kind of job and
    not the other."""
    Path(flag_dir).mkdir(parents=True, exist_ok=True)
    paths = [marker(flag_dir, m.file) for m in markers()]
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
    """Remove every registered marker; returns the ones that existed (a missing one is not an error)."""
    removed = []
    for m in markers():
        path = marker(flag_dir, m.file)
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def on_restart(name: str) -> Callable[[RestartHook], RestartHook]:
    def register(fn: RestartHook) -> RestartHook:
        _restart_hooks[name] = fn
        return fn
    return register


def on_scoped_restart(name: str) -> Callable[[ScopedRestartHook], ScopedRestartHook]:
    def register(fn: ScopedRestartHook) -> ScopedRestartHook:
        _scoped_restart_hooks[name] = fn
        return fn
    return register


def on_status(name: str) -> Callable[[StatusHook], StatusHook]:
    def register(fn: StatusHook) -> StatusHook:
        _status_hooks[name] = fn
        return fn
    return register


def restart_hooks() -> dict[str, RestartHook]:
    return dict(_restart_hooks)


def scoped_restart_hooks() -> dict[str, ScopedRestartHook]:
    return dict(_scoped_restart_hooks)


def status_hooks() -> dict[str, StatusHook]:
    return dict(_status_hooks)
