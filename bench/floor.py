"""The raw-SQL floor: the fewest durable statements a job needs, from a plain PyMySQL loop.

Each dqueue figure is printed beside the matching floor, measured in the same run on the same
table (created by ``migrate.upgrade``), so a noisy machine moves both numbers together.

- insert: ``INSERT`` + ``COMMIT`` per job, one client;
- drain: P processes, each claiming k jobs per transaction (``SELECT id … priority = 0 …
  ORDER BY run_at LIMIT k FOR UPDATE SKIP LOCKED``, ``UPDATE`` by id, ``COMMIT``), then per job
  ``DELETE`` + ``COMMIT``, until a claim comes back empty.

Run alone: ``python -m bench.floor [--jobs N]``.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from . import common, cpu

# Every benchmark row has priority 0, so ``priority = 0 … ORDER BY run_at`` selects exactly what
# ``ORDER BY priority, run_at`` would.  It is the only safe form: without the priority equality
# the locking read is a scan of every (NULL, NULL) index entry and, under READ COMMITTED too,
# keeps a lock on each future-dated row it walks past (2 per row, seen in INNODB_TRX).  With
# 500,000 future rows and 4 floor processes that took MariaDB 10.11 down on 2026-11-23 ("[FATAL]
# InnoDB: Over 95 percent of the buffer pool is occupied by lock heaps", signal 6).  The
# per-priority range stops at the first future row: 2 locks in all, as in dqueue's Claimer.
CLAIM = ("SELECT id FROM delayed_jobs WHERE failed_at IS NULL AND locked_at IS NULL "
         "AND priority = 0 AND run_at <= UTC_TIMESTAMP(6) ORDER BY run_at LIMIT %s "
         "FOR UPDATE SKIP LOCKED")
MAX_DRAIN_SECONDS = 900.0  # a drain that has not finished by then is broken, not slow


def insert_rate(url: str, count: int) -> dict[str, float]:
    """Jobs/s for ``count`` single-row INSERT + COMMIT from one connection."""
    handler = common.noop_handler()
    conn = common.connect(common.database_of(url))
    try:
        started = time.perf_counter()
        with conn.cursor() as cur:
            for _ in range(count):
                cur.execute(common.INSERT_JOB, (handler,))
                conn.commit()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return {"jobs": count, "seconds": elapsed, "rate": count / elapsed}


def _lock_ids(cur: object, ids: list[int], locked_by: str) -> None:
    marks = ",".join(["%s"] * len(ids))
    cur.execute(  # type: ignore[attr-defined]
        "UPDATE delayed_jobs SET locked_at = UTC_TIMESTAMP(6), locked_by = %s, "
        f"attempts = attempts + 1, updated_at = UTC_TIMESTAMP(6) WHERE id IN ({marks})",
        (locked_by, *ids))


def _drain_one(url: str, k: int) -> int:
    """One floor process: claim k, delete each, until nothing is runnable; returns jobs done."""
    conn = common.connect(common.database_of(url))
    locked_by = f"floor pid:{os.getpid()}"
    done = 0
    deadline = time.monotonic() + MAX_DRAIN_SECONDS
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(CLAIM, (k,))
                ids = [int(row[0]) for row in cur.fetchall()]
                if not ids:
                    conn.commit()
                    break
                _lock_ids(cur, ids, locked_by)
                conn.commit()
                for job_id in ids:
                    cur.execute("DELETE FROM delayed_jobs WHERE id = %s", (job_id,))
                    conn.commit()
                done += len(ids)
    finally:
        conn.close()
    return done


def drain_rate(url: str, jobs: int, processes: int, k: int) -> dict[str, float]:
    """Bulk-insert ``jobs`` runnable rows (not timed), then time P floor processes draining them."""
    common.bulk_insert(url, jobs)
    ctx = multiprocessing.get_context("fork")
    # The pool is forked before the clock starts: the floor is the best case, with no start-up.
    meter = cpu.cpu_meter()
    with ctx.Pool(processes) as pool:
        started = time.perf_counter()
        result = pool.starmap_async(_drain_one, [(url, k)] * processes)
        counts = result.get(MAX_DRAIN_SECONDS + 60)
        elapsed = time.perf_counter() - started
    used = meter()  # after the pool's processes are reaped, so their CPU is counted
    done = sum(counts)
    if done != jobs:
        raise RuntimeError(f"floor drained {done} jobs, expected {jobs}")
    return {"jobs": done, "seconds": elapsed, "rate": done / elapsed, "processes": processes,
            "per_claim": k, **cpu.per_job_ms(used, done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with common.scratch_db("floor") as url:
        ins = insert_rate(url, args.jobs)
        print(f"insert + commit, 1 client: {ins['rate']:8.0f} jobs/s")
        with common.connect(common.database_of(url)) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM delayed_jobs")
            conn.commit()
        for k in (1, 10):
            for p in args.processes:
                r = drain_rate(url, args.jobs, p, k)
                print(f"drain, {k:2d} per claim, P={p}: {r['rate']:8.0f} jobs/s")


if __name__ == "__main__":
    main()
