"""Running real worker processes from tests."""
from __future__ import annotations

import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.helpers import run_cli, start_cli

FAST = {"DQUEUE_HEARTBEAT_INTERVAL": "0.5", "DQUEUE_STALE_AFTER": "3", "DQUEUE_SLEEP_DELAY": "0.02",
        "DQUEUE_GRACE_PERIOD": "5", "DQUEUE_KILL_AFTER": "2", "DQUEUE_BACKOFF_BASE": "0.05",
        "DQUEUE_PRIORITY_REFRESH": "0.2"}


def burst(db_url: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``dqueue worker --burst`` to completion."""
    return run_cli(["--import", "tests.sample_jobs", "worker", "--burst", *args], db_url,
                   timeout=timeout, **{**FAST, **env})


@contextmanager
def worker(db_url: str, log: Path, *args: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A background ``dqueue worker``; stopped with SIGTERM on exit, which must give status 0."""
    proc = start_cli(["--import", "tests.sample_jobs", "worker", *args], db_url, log=log,
                     **{**FAST, **env})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"worker did not stop on SIGTERM; log:\n{log.read_text()[-3000:]}") from None


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
