"""Enqueue-to-start latency and the idle cost of a worker, with the pool idle and polling.

For N = 1 and 2 workers (non-burst, default ``sleep_delay``), on an empty table and then with
future-dated rows in it:

1. the server's baseline CPU over an idle window with none of our processes connected;
2. start the pool, wait until every worker has registered and settled;
3. idle window: CPU seconds of the supervisor and workers (``/proc/<pid>/stat``) and of the
   mysqld threads serving their connections (PROCESSLIST.TID, ``/proc/<mysqld>/task/<tid>``);
   the whole mysqld above its baseline is reported too; all per idle worker as % of one core;
4. enqueue ``bench.stamp`` jobs one at a time, 20-60 ms apart; the job writes its start time and
   latency = start time - the time ``Client.enqueue`` returned (its commit).  Three clients, one
   after the other (``CLIENTS``): one on the workers' host, which rings their UNIX doorbell ("same
   host"); one that says it is another host and rings no UNIX doorbell, so it reaches the workers
   only through their network doorbell, as a client on another host does ("other host"); and one
   that rings neither, so only polling finds its jobs ("polling only").

Run alone: ``python -m bench.latency [--samples 300] [--idle 10] [--future 500000]``.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from dqueue import config
from dqueue.client import Client
from dqueue.store import make_engine

# Importing latency_jobs registers bench.stamp here too, for Client.enqueue's name check.
from . import common, cpu, latency_jobs

GAP = (0.020, 0.060)  # seconds between enqueues
OTHER_HOST = "bench-other-host"  # a hostname no worker has: the client is "on another host"
# Result key -> (label, settings of the enqueuing client).
CLIENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "latency": ("same host", {}),
    "latency_other_host": ("other host", {"hostname": OTHER_HOST, "doorbell_dir": "off"}),
    "latency_polled": ("polling only", {"hostname": OTHER_HOST, "doorbell_dir": "off",
                                        "network_doorbell": "off"}),
}


def registered_workers(url: str) -> int:
    conn = common.connect(common.database_of(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM dqueue_processes WHERE kind = 'worker'")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def idle_cpu(url: str, pool_pid: int, workers: int, seconds: float,
             baseline: float) -> dict[str, float]:
    """CPU used over ``seconds`` by the pool (supervisor + workers) and by the server for it.

    The server's share is read two ways: the threads serving the pool's connections (exact, and
    immune to other clients of a shared server: the pass/fail figure), and the whole mysqld
    process above its baseline (includes background work, but also everybody else's queries).
    """
    server = cpu.mysqld_pid()
    pids = [pool_pid, *cpu.children_of(pool_pid)]
    if len(pids) != workers + 1:
        raise RuntimeError(f"expected a supervisor and {workers} workers, found pids {pids}")
    tids = cpu.server_threads(common.database_of(url)) if server else []
    pool0 = sum(cpu.cpu_seconds(p) for p in pids)
    threads0 = {t: cpu.thread_cpu_seconds(server, t) for t in tids} if server else {}
    server0 = cpu.cpu_seconds(server) if server else 0.0
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    server_used = (cpu.cpu_seconds(server) - server0) if server else float("nan")
    pool = sum(cpu.cpu_seconds(p) for p in pids) - pool0
    # A thread that ended in the window reads 0: count it as nothing rather than negative.
    threads = sum((max(cpu.thread_cpu_seconds(server, t) - c, 0.0) for t, c in threads0.items()),
                  0.0) if server else 0.0
    server_extra = max(server_used - baseline * elapsed, 0.0)
    per = 100 / elapsed / workers
    return {"seconds": elapsed, "connections": len(tids), "pool_cpu_s": pool,
            "server_threads_cpu_s": threads, "mysqld_cpu_s": server_used,
            "mysqld_baseline_cpu_per_s": baseline,
            "pool_pct_per_worker": pool * per, "server_pct_per_worker": threads * per,
            "pct_per_worker": (pool + threads) * per,
            "mysqld_above_baseline_pct_per_worker": server_extra * per}


def server_baseline(seconds: float) -> float:
    """mysqld CPU seconds per second while none of our processes is connected."""
    server = cpu.mysqld_pid()
    if server is None:
        return float("nan")
    before = cpu.cpu_seconds(server)
    started = time.monotonic()
    time.sleep(seconds)
    return (cpu.cpu_seconds(server) - before) / (time.monotonic() - started)


def sample_latency(url: str, samples: int, stamp_file: Path, seed: int,
                   client_settings: dict[str, Any]) -> list[float]:
    """Enqueue-to-start times of jobs enqueued by a client with ``client_settings`` (CLIENTS)."""
    rng = random.Random(seed)
    engine = make_engine(url)
    enqueued: dict[int, float] = {}
    try:
        settings = config.load(environ={}, database_url=url, **client_settings)
        client = Client(settings, engine=engine)
        for seq in range(samples):
            time.sleep(rng.uniform(*GAP))
            client.enqueue("bench.stamp", {"path": str(stamp_file), "seq": seq})
            enqueued[seq] = time.time()
    finally:
        engine.dispose()

    def all_started() -> list[str]:
        lines = stamp_file.read_text().splitlines() if stamp_file.exists() else []
        return lines if len(lines) >= samples else []
    lines = common.wait_until(all_started, timeout=60, what=f"{samples} jobs to start")
    started = dict((int(s), float(t)) for s, t in (line.split(",") for line in lines))
    return [started[seq] - enqueued[seq] for seq in range(samples)]


def measure_pool(url: str, workers: int, samples: int, idle_seconds: float, tmp: Path,
                 label: str) -> dict[str, Any]:
    baseline = server_baseline(idle_seconds)
    log = tmp / f"latency-{label}-{workers}.log"
    cmd = common.worker_command(url, workers, imports=(latency_jobs.__name__,))
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=common.cli_env(), start_new_session=True)
    try:
        common.wait_until(lambda: registered_workers(url) == workers, timeout=60, interval=0.2,
                          what=f"{workers} workers to register")
        time.sleep(2.0)  # past the first reap, which runs 0.5-1.5 s after a worker starts
        idle = idle_cpu(url, proc.pid, workers, idle_seconds, baseline)
        result: dict[str, Any] = {"workers": workers, "idle": idle}
        for key, (_, client_settings) in CLIENTS.items():
            times = sample_latency(url, samples, tmp / f"{key}-{label}-{workers}.csv", seed=workers,
                                   client_settings=client_settings)
            result[key] = common.summary_ms(times)
    finally:
        code = common.stop_process(proc)
    if code != 0:
        raise RuntimeError(f"worker pool exited {code}:\n{log.read_text()[-2000:]}")
    figures = "; ".join(f"{name} p50 {result[key]['p50_ms']:.1f} ms, p99 {result[key]['p99_ms']:.1f} ms"
                        for key, (name, _) in CLIENTS.items())
    common.log(f"latency {label} N={workers}: {figures}; "
               f"idle {idle['pct_per_worker']:.2f}% of a core per worker "
               f"(pool {idle['pool_pct_per_worker']:.2f}%, its server threads {idle['server_pct_per_worker']:.2f}%; "
               f"whole mysqld above baseline {idle['mysqld_above_baseline_pct_per_worker']:.2f}%)")
    return result


def run(samples: int = 300, idle_seconds: float = 10.0, workers: list[int] | None = None,
        future: int = 500_000) -> dict[str, Any]:
    workers = workers or [1, 2]
    out: dict[str, Any] = {"samples": samples, "idle_seconds": idle_seconds, "future_rows": future}
    with common.scratch_db("latency") as url, tempfile.TemporaryDirectory(prefix="dq_bench_") as tmp:
        out["empty"] = {str(n): measure_pool(url, n, samples, idle_seconds, Path(tmp), "empty")
                        for n in workers}
        common.bulk_insert(url, future, future=True)
        common.analyze(url)
        out["future"] = {str(n): measure_pool(url, n, samples, idle_seconds, Path(tmp), "future")
                         for n in workers}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, seconds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--future", type=int, default=500_000)
    args = parser.parse_args()
    print(json.dumps(run(args.samples, args.idle, args.workers, args.future), indent=2))


if __name__ == "__main__":
    main()
