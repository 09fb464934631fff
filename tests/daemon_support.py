"""Helpers for the tests that run ``bin/delayed_job`` as a real daemon: the launcher with fast
settings, a working directory with an initialised database, and sample jobs enqueued by the CLI."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from dqueue import daemon, pidfile
from tests.helpers import ROOT, cli_env, run_cli, wait_until

LAUNCHER = ROOT / "bin" / "delayed_job"
FAST = {"DQUEUE_HEARTBEAT_INTERVAL": "0.5", "DQUEUE_STALE_AFTER": "3", "DQUEUE_SLEEP_DELAY": "0.02",
        "DQUEUE_GRACE_PERIOD": "5", "DQUEUE_KILL_AFTER": "2"}
SAMPLES = ["--import", "dqueue.samples"]


def dj(args: list[str], db_url: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``bin/delayed_job ARGS`` in ``cwd`` with FAST settings (``env`` overrides them)."""
    return subprocess.run([sys.executable, str(LAUNCHER), *args], env=cli_env(db_url, **{**FAST, **env}), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def enqueue(db_url: str, cwd: Path, name: str, args: dict[str, object]) -> int:
    result = run_cli([*SAMPLES, "enqueue", name, "--json", "--args", json.dumps(args)], db_url, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["id"])


def started_pid(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"started \(pid (\d+)\)", result.stdout)
    assert match, result.stdout
    return int(match.group(1))


def daemon_workdir(db_url: str, tmp_path: Path) -> Iterator[Path]:
    """For a fixture: ``tmp_path`` with an initialised database; afterwards kills every process a failed
    test left holding the pidfile's lock (the supervisor and its workers)."""
    result = run_cli(["db", "init"], db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    yield tmp_path
    path = tmp_path / "var" / "run" / daemon.PIDFILE_NAME
    for pid in pidfile.read_state(path).holders:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pidfile.is_locked(path), 10, message="leftover daemon killed")
