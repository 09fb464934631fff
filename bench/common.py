"""What the benchmark scripts share: scratch databases, bulk rows, raw connections, CPU clocks.

Every script talks only to the MariaDB server on 127.0.0.1 and only to databases it created
itself (``dq_bench_<name>``), which it drops when it ends, even after an error.
"""
from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pymysql
from sqlalchemy.engine import make_url

from dqueue import jobs
from dqueue.store import make_engine, migrate

ROOT = Path(__file__).resolve().parents[1]
DQUEUE_CLI = str(Path(sys.executable).with_name("dqueue"))
SERVER_URL = os.environ.get("DQ_BENCH_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
T = TypeVar("T")

# The columns a dqueue enqueue writes, in the order the raw-SQL statements below use.
INSERT_JOB = ("INSERT INTO delayed_jobs (priority, attempts, handler, run_at, queue, created_at, "
              "updated_at) VALUES (0, 0, %s, UTC_TIMESTAMP(6), 'default', UTC_TIMESTAMP(6), "
              "UTC_TIMESTAMP(6))")


def noop_handler() -> str:
    return jobs.encode_handler("sample.noop", {})


def server_params() -> dict[str, Any]:
    url = make_url(SERVER_URL)
    if url.host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing to benchmark against {url.host}: only 127.0.0.1 is allowed")
    return {"host": "127.0.0.1", "port": url.port or 3306, "user": url.username or "root",
            "password": url.password or ""}


def db_url(database: str) -> str:
    return str(make_url(SERVER_URL).set(database=database).render_as_string(hide_password=False))


def connect(database: str | None = None) -> pymysql.connections.Connection:
    """A plain PyMySQL connection with the session settings dqueue's engine uses.

    READ COMMITTED and UTC, like ``store.engine``: the floor must not pay for gap locks that the
    engine does not take, or the ratio would flatter dqueue.
    """
    conn = pymysql.connect(database=database, autocommit=False, charset="utf8mb4",
                           connect_timeout=10, read_timeout=600, write_timeout=600,
                           **server_params())
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.execute("SET time_zone = '+00:00'")
    conn.commit()
    return conn


def _admin(sql: str) -> None:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _drop(database: str, attempts: int = 12) -> None:
    """Drop a scratch database, retrying for a minute if the server is restarting."""
    for i in range(attempts):
        try:
            _admin(f"DROP DATABASE IF EXISTS `{database}`")
            return
        except pymysql.err.OperationalError as exc:
            if i == attempts - 1:
                log(f"could not drop {database}: {exc}; drop it by hand")
                return
            time.sleep(5)


@contextlib.contextmanager
def scratch_db(name: str) -> Iterator[str]:
    """Create ``dq_bench_<name>`` with dqueue's schema (``migrate.upgrade``), yield its URL, drop it."""
    database = f"dq_bench_{name}"
    _admin(f"DROP DATABASE IF EXISTS `{database}`")
    try:
        _admin(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        url = db_url(database)
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        _drop(database)


def database_of(url: str) -> str:
    return str(make_url(url).database)


def bulk_insert(url: str, count: int, future: bool = False, chunk: int = 50_000) -> None:
    """Insert ``count`` sample.noop rows from MariaDB's sequence engine, ``chunk`` rows a commit.

    ``future``: run_at is one day ahead, the backlog of scheduled jobs that must not slow claims.
    Chunked so that no transaction holds locks on half a million rows: MariaDB's default 128 MB
    buffer pool is shared with whatever else runs on the machine.
    """
    run_at = "UTC_TIMESTAMP(6) + INTERVAL 1 DAY" if future else "UTC_TIMESTAMP(6)"
    conn = connect(database_of(url))
    try:
        with conn.cursor() as cur:
            for start in range(0, max(count, 0), chunk):
                size = min(chunk, count - start)
                cur.execute(
                    "INSERT INTO delayed_jobs (priority, attempts, handler, run_at, queue, created_at, "
                    f"updated_at) SELECT 0, 0, %s, {run_at}, 'default', UTC_TIMESTAMP(6), "
                    f"UTC_TIMESTAMP(6) FROM seq_1_to_{int(size)}", (noop_handler(),))
                conn.commit()
    finally:
        conn.close()


def count_rows(url: str, runnable_only: bool = True) -> int:
    conn = connect(database_of(url))
    try:
        with conn.cursor() as cur:
            where = " WHERE run_at <= UTC_TIMESTAMP(6)" if runnable_only else ""
            cur.execute(f"SELECT COUNT(*) FROM delayed_jobs{where}")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def run_sql(url: str, sql: str) -> None:
    """One statement on the scratch database, on a connection of its own, committed."""
    conn = connect(database_of(url))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        conn.commit()
    finally:
        conn.close()


def analyze(url: str) -> None:
    """Refresh index statistics after a bulk load, as a long-lived table would have them."""
    run_sql(url, "ANALYZE TABLE delayed_jobs")


# -- running the real CLI ---------------------------------------------------------------------

def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DQUEUE_")}
    # bench.latency_jobs must be importable by the worker; the console script's sys.path[0]
    # is .venv/bin, not the repository.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def worker_command(url: str, count: int, *extra: str, imports: tuple[str, ...] = ("dqueue.samples",),
                   log_level: str = "INFO") -> list[str]:
    cmd = [DQUEUE_CLI, "--database-url", url, "--log-level", log_level]
    for module in imports:
        cmd += ["--import", module]
    return cmd + ["worker", "-n", str(count), *extra]


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> int:
    """TERM, wait ``timeout`` seconds, then KILL the process group (only the one we started)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(10)


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05,
               what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- figures ------------------------------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: with 300 samples, p99 is the 3rd largest, not an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else float("nan"),
            "mean_ms": statistics.fmean(ms) if ms else float("nan")}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def vm_hwm_kb(pid: int) -> int:
    """A process's peak resident memory (VmHWM) in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")
