"""Helpers shared by the test tiers: polling, running the real CLI, reading the queue table."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {value!r})")
        time.sleep(interval)


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DQUEUE_")}
    env["DQUEUE_DATABASE_URL"] = db_url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_cli(args: list[str], db_url: str, cwd: Path | None = None, timeout: float = 60,
            **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dqueue ARGS`` to completion and return its result (never raises on exit code)."""
    return subprocess.run([sys.executable, "-m", "dqueue", *args], env=cli_env(db_url, **env),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start_cli(args: list[str], db_url: str, cwd: Path | None = None, log: Path | None = None,
              module: str = "dqueue", **env: str) -> subprocess.Popen[bytes]:
    """Start ``python -m MODULE ARGS`` in the background, output to ``log`` (or discarded)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", module, *args], env=cli_env(db_url, **env),
                            cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def execute(engine: Engine, sql: str, **params: Any) -> int:
    with engine.begin() as conn:
        return conn.execute(text(sql), params).rowcount


def job_rows(engine: Engine) -> dict[int, Any]:
    """Every delayed_jobs row by id, with typed columns (datetimes parsed on SQLite too)."""
    from sqlalchemy import select

    from dqueue.store.schema import delayed_jobs
    with engine.connect() as conn:
        return {r.id: r._mapping for r in conn.execute(select(delayed_jobs))}
