"""Run every benchmark, write bench/results/<timestamp>.json and print the markdown table.

    .venv/bin/python -m bench.run_all            # full: about 7-10 minutes
    .venv/bin/python -m bench.run_all --quick    # small sizes, to check the scripts (< 1 min)

A benchmark, not a test: it exits 0 whatever the figures are (non-zero only if a run broke),
and the figures mean something only on a quiet machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import common, drain, enqueue, itemsync, latency, report, zenodo_upload

RESULTS = Path(__file__).with_name("results")

FULL: dict[str, dict[str, Any]] = {"drain": {"jobs": 10_000, "workers": [1, 2, 4], "future": 500_000},
        "enqueue": {"jobs": 10_000},
        "latency": {"samples": 300, "idle_seconds": 10.0, "workers": [1, 2], "future": 500_000},
        "zenodo": {"size_mb": 2048, "rounds": 2},
        "itemsync": {"projects": 1811, "rounds": 2}}
QUICK: dict[str, dict[str, Any]] = {"drain": {"jobs": 300, "workers": [4], "future": 20_000},
         "enqueue": {"jobs": 300},
         "latency": {"samples": 30, "idle_seconds": 2.0, "workers": [2], "future": 20_000},
         "zenodo": {"size_mb": 64, "rounds": 1},
         "itemsync": {"projects": 200, "rounds": 1}}

SECTIONS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], list[report.Row]]]] = {
    "drain": (drain.run, report.drain_rows),
    "enqueue": (enqueue.run, report.enqueue_rows),
    "latency": (latency.run, report.latency_rows),
    "zenodo": (zenodo_upload.run, zenodo_upload.rows),
    "itemsync": (itemsync.run, itemsync.rows),
}


def server_info() -> dict[str, Any]:
    """What a reader needs to compare runs: the server's version and durability settings."""
    names = ("version", "innodb_flush_log_at_trx_commit", "sync_binlog", "log_bin",
             "innodb_buffer_pool_size", "innodb_flush_method")
    conn = common.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT " + ", ".join(f"@@{n}" for n in names))
            values = cur.fetchone()
    finally:
        conn.close()
    return dict(zip(names, [str(v) for v in values], strict=True))


def machine_info() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dqueue benchmarks against the raw-SQL floor")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the scripts")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON result")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "started": stamp, "quick": args.quick,
        "command": " ".join([Path(sys.executable).name, "-m", "bench.run_all", *(argv or sys.argv[1:])]),
        "server": server_info(), "machine": machine_info(), "sizes": sizes, "loadavg": {}}
    rows: list[report.Row] = []
    started = time.monotonic()
    for name in args.only or list(SECTIONS):
        run, to_rows = SECTIONS[name]
        common.log(f"{name}: {sizes[name]}")
        # Load average before and after each section: the noise a reader should discount.
        before = os.getloadavg()
        result[name] = run(**sizes[name])
        result["loadavg"][name] = {"before": before, "after": os.getloadavg()}
        rows += to_rows(result[name])
    result["seconds"] = time.monotonic() - started
    result["table"] = report.as_dicts(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(report.markdown(rows))
    print(f"\n{'quick run (sizes too small to judge targets); ' if args.quick else ''}"
          f"{result['seconds']:.0f} s; results in {path}; "
          f"load average at start {result['machine']['loadavg_at_start'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
