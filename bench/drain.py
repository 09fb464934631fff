"""Drain rate: ``dqueue worker -n N --burst`` (the real CLI) against the raw-SQL floor.

For N = 1, 2, 4: bulk-insert the no-op jobs (not timed), then time the CLI from launch to exit.
The wall time includes the CLI's start-up (interpreter, imports, schema check, fork,
registration), a fixed cost that a long-running daemon pays once; it is measured separately by
a burst over an empty queue and also reported subtracted ("net").  Then the same again with
future-dated rows in the table, which a claim must not have to walk past.

Run alone: ``python -m bench.drain [--jobs 10000] [--future 500000]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import common, cpu, floor

MAX_SECONDS = 600.0


def _burst(url: str, workers: int, logfile: Path) -> float:
    """Run the burst worker pool to completion; its wall time in seconds."""
    cmd = common.worker_command(url, workers, "--burst")
    with open(logfile, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=common.cli_env(),
                                start_new_session=True)
        try:
            code = proc.wait(MAX_SECONDS)
        except subprocess.TimeoutExpired:
            common.stop_process(proc)
            raise RuntimeError(f"burst with {workers} workers did not finish in {MAX_SECONDS:.0f}s") from None
        elapsed = time.perf_counter() - started
    if code != 0:
        tail = logfile.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{tail}")
    return elapsed


def dqueue_drain(url: str, jobs: int, workers: int, startup: float, logdir: Path) -> dict[str, float]:
    common.bulk_insert(url, jobs)
    meter = cpu.cpu_meter()
    elapsed = _burst(url, workers, logdir / f"drain-{workers}.log")
    used = meter()
    left = common.count_rows(url)
    if left:
        raise RuntimeError(f"{left} runnable jobs left after the burst with {workers} workers")
    net = max(elapsed - startup, 1e-3)
    return {"jobs": jobs, "seconds": elapsed, "rate": jobs / elapsed, "startup_seconds": startup,
            "net_rate": jobs / net, "workers": workers, **cpu.per_job_ms(used, jobs)}


def measure(url: str, jobs: int, workers: list[int], label: str) -> dict[str, Any]:
    """dqueue and both floors (1 and 10 jobs per claim) for each N, on the table as it is."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dq_bench_") as tmp:
        for n in workers:
            startup = _burst(url, n, Path(tmp) / f"startup-{n}.log")
            dq = dqueue_drain(url, jobs, n, startup, Path(tmp))
            f1 = floor.drain_rate(url, jobs, n, 1)
            f10 = floor.drain_rate(url, jobs, n, 10)
            out[str(n)] = {"dqueue": dq, "floor_1": f1, "floor_10": f10}
            common.log(f"drain {label} N={n}: dqueue {dq['rate']:.0f}/s (net {dq['net_rate']:.0f}/s, "
                       f"start-up {startup:.2f}s), floor k=1 {f1['rate']:.0f}/s, "
                       f"k=10 {f10['rate']:.0f}/s; client CPU per job {dq['client_cpu_ms_per_job']:.2f} "
                       f"vs {f10['client_cpu_ms_per_job']:.2f} ms (incl. start-up)")
    return out


def run(jobs: int = 10_000, workers: list[int] | None = None, future: int = 500_000) -> dict[str, Any]:
    workers = workers or [1, 2, 4]
    with common.scratch_db("drain") as url:
        empty = measure(url, jobs, workers, "empty")
        started = time.perf_counter()
        common.bulk_insert(url, future, future=True)
        common.analyze(url)
        common.log(f"inserted {future} future-dated rows in {time.perf_counter() - started:.1f}s")
        with_future = measure(url, jobs, workers, f"+{future} future")
        if common.count_rows(url, runnable_only=False) != future:
            raise RuntimeError("the future-dated rows were touched by a drain")
    return {"jobs": jobs, "future_rows": future, "empty": empty, "future": with_future}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--future", type=int, default=500_000)
    args = parser.parse_args()
    print(json.dumps(run(args.jobs, args.workers, args.future), indent=2))


if __name__ == "__main__":
    main()
