"""The item sync of 1,811 unchanged items against the fake GitLab at 50 ms per request, beside the
floor: the same requests from a plain ``requests`` loop over a thread pool at the same rate and
concurrency, measured in the same run (issue 9 point 9).

    .venv/bin/python -m bench.itemsync                       # prints JSON
    .venv/bin/python -m bench.itemsync --projects 200        # a quick look

The fake GitLab runs in its own process (``python -m dqueue.testing.gitlab --latency 0.05``), so its
threads do not share a GIL with either side.  Both sides send, per run: the group lookup, the
group's project pages until an empty one (100 per page), and per project its hooks and its default
branch (2 × 1,811 requests): 3,643 requests, at most 600 per second and 40 in flight.  The floor
streams like the sync: each page's projects go to the pool as the page arrives.

dqueue's side is the real thing on a scratch MariaDB database: a ``dqueue worker`` process runs
``itemSynchronizationJob``; a first run ingests every item and adds every webhook, the second
(measured) finds nothing changed.  Its time is from ``launch.start`` until the execution is seen
COMPLETED (polled every 20 ms), and also the execution's own start→end from its record.  Peak RSS
is the worker process's VmHWM, read from /proc while it is alive.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import requests

from . import common
from .report import Row

TOKEN = "glpat-bench-0123456789"
HOOK_URL = "http://127.0.0.1:9/webHook"  # never called: nothing is pushed during the benchmark
HOOK_SECRET = "bench-hook-secret"
RUNNING = ("STARTING", "STARTED", "STOPPING")


def start_fake(projects: int, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "dqueue.testing.gitlab", "--projects", str(projects),
                             "--latency", str(latency), "--token", TOKEN], cwd=common.ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"the fake GitLab did not start: {url!r}")
    return proc, url


def fake_stats(url: str, reset: bool = False) -> dict[str, Any]:
    if reset:
        return dict(requests.post(f"{url}/_fake/reset", timeout=10).json())
    return dict(requests.get(f"{url}/_fake/stats", timeout=10).json())


# -- the floor -----------------------------------------------------------------------------------

class Pacer:
    """The simplest shared spacing: a lock and the next free slot."""

    def __init__(self, rate: float) -> None:
        self.interval, self.next, self.lock = 1.0 / rate, 0.0, threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(self.next, now)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def floor(url: str, rate: float, concurrency: int) -> dict[str, Any]:
    """The same requests with plain requests: one keep-alive session per thread, paced, bounded."""
    pace, local = Pacer(rate), threading.local()
    in_flight = threading.BoundedSemaphore(concurrency)  # the listing thread's requests count too
    api = f"{url}/api/v4"

    def get(path: str) -> Any:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {TOKEN}"
        with in_flight:
            pace()
            answer = session.get(f"{api}{path}", timeout=(10, 60))
        answer.raise_for_status()
        return answer.json()

    def check(project: dict[str, Any]) -> None:
        get(f"/projects/{project['id']}/hooks?page=1&per_page=100")
        if project["default_branch"]:
            get(f"/projects/{project['id']}/repository/branches/{project['default_branch']}")

    fake_stats(url, reset=True)
    started = time.monotonic()
    futures: list[Future[None]] = []
    with ThreadPoolExecutor(concurrency) as pool:
        group = get("/groups/item-bank%2Fitems?with_projects=false")["id"]
        page = 1
        while projects := get(f"/groups/{group}/projects?page={page}&per_page=100&include_subgroups=true"
                              "&with_shared=false&simple=true&order_by=id&sort=asc"):
            futures += [pool.submit(check, p) for p in projects]
            page += 1
        for future in futures:
            future.result()
    seconds = time.monotonic() - started
    stats = fake_stats(url)
    return {"seconds": seconds, "requests": stats["total"], "by_endpoint": stats["requests"],
            "peak_in_flight": stats["peak_in_flight"], "rate": stats["total"] / seconds}


# -- dqueue ----------------------------------------------------------------------------------------

def dqueue_env(db: str, url: str, work: Path, rate: float, concurrency: int) -> dict[str, str]:
    return {**common.cli_env(), "DQUEUE_DATABASE_URL": db, "DQUEUE_GITLAB_BASE_URL": url,
            "DQUEUE_GITLAB_GROUP": "item-bank/items", "DQUEUE_GITLAB_TOKEN": TOKEN,
            "DQUEUE_GITLAB_WEBHOOK_URL": HOOK_URL, "DQUEUE_GITLAB_WEBHOOK_SECRET": HOOK_SECRET,
            "DQUEUE_GITLAB_REQUEST_RATE": str(rate), "DQUEUE_GITLAB_CONCURRENCY": str(concurrency),
            "DQUEUE_GITLAB_PER_PAGE": "100", "DQUEUE_FLAG_DIR": str(work / "flags"),
            "DQUEUE_PID_DIR": str(work / "run"), "DQUEUE_LOG_DIR": str(work / "log")}


def one_sync(env: dict[str, str], url: str, worker: int, peak: list[int]) -> dict[str, Any]:
    """Start itemSynchronizationJob, wait for its end (sampling the worker's peak RSS)."""
    from dqueue import config
    from dqueue.batch import launch
    from dqueue.store import make_engine

    settings = config.load(environ=env)
    engine = make_engine(env["DQUEUE_DATABASE_URL"])
    fake_stats(url, reset=True)
    try:
        started = time.monotonic()
        execution_id = launch.start(engine, settings, "itemSynchronizationJob").as_dict()["jobExecutionId"]

        def ended() -> dict[str, Any] | None:
            peak[0] = max(peak[0], common.vm_hwm_kb(worker))
            record = launch.get(engine, execution_id)
            found = record.as_dict() if record is not None else None
            return found if found is not None and found["status"] not in RUNNING else None

        record = cast(dict[str, Any], common.wait_until(ended, 600, interval=0.02, what="the sync's end"))
        seconds = time.monotonic() - started
    finally:
        engine.dispose()
    if record["status"] != "COMPLETED":
        raise RuntimeError(f"the sync ended {record['status']}: {record['exitMessage']}")
    stats = fake_stats(url)
    return {"seconds": seconds, "record_seconds": _span(record), "exit_message": record["exitMessage"],
            "requests": stats["total"], "by_endpoint": stats["requests"], "peak_in_flight": stats["peak_in_flight"]}


def _span(record: dict[str, Any]) -> float | None:
    from datetime import datetime
    try:
        return (datetime.fromisoformat(str(record["endTime"])) - datetime.fromisoformat(
            str(record["startTime"]))).total_seconds()
    except (TypeError, ValueError):
        return None


def dqueue_sync(url: str, rate: float, concurrency: int) -> dict[str, Any]:
    with common.scratch_db("itemsync") as db, tempfile.TemporaryDirectory(prefix="dq-itemsync-bench-") as tmp:
        work = Path(tmp)
        env = dqueue_env(db, url, work, rate, concurrency)
        log = open(work / "worker.log", "wb")
        sup = subprocess.Popen([sys.executable, "-m", "dqueue", "worker", "-n", "1"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        try:
            worker = common.wait_until(lambda: _children(sup.pid), 30, what="the worker")[0]
            peak = [0]
            first = one_sync(env, url, worker, peak)
            common.log(f"itemsync: first run (ingest) {first['seconds']:.2f} s: {first['exit_message']}")
            second = one_sync(env, url, worker, peak)
            peak[0] = max(peak[0], common.vm_hwm_kb(worker))
        finally:
            common.stop_process(sup, 30)
            log.close()
    return {"first": first, "second": second, "peak_rss_mb": peak[0] / 1024}


def _children(pid: int) -> list[int]:
    from .cpu import children_of
    return children_of(pid)


def run(projects: int = 1811, latency: float = 0.05, rate: float = 600.0, concurrency: int = 40,
        rounds: int = 2) -> dict[str, Any]:
    """The floor, then dqueue's two runs, ``rounds`` times on a fresh fake; the best of each is compared."""
    floors, syncs = [], []
    for i in range(rounds):
        fake, url = start_fake(projects, latency)
        try:
            floors.append(floor(url, rate, concurrency))
            syncs.append(dqueue_sync(url, rate, concurrency))
        finally:
            fake.send_signal(signal.SIGTERM)
            fake.wait(30)
        common.log(f"itemsync round {i + 1}: floor {floors[-1]['seconds']:.2f} s, dqueue "
                   f"{syncs[-1]['second']['seconds']:.2f} s, worker peak RSS {syncs[-1]['peak_rss_mb']:.0f} MB")
    best_floor = min(floors, key=lambda f: f["seconds"])
    best = min(syncs, key=lambda s: s["second"]["seconds"])
    return {"projects": projects, "latency": latency, "rate": rate, "concurrency": concurrency,
            "loadavg_after": os.getloadavg(), "floor": best_floor, "dqueue": best,
            "ratio": best["second"]["seconds"] / best_floor["seconds"],
            "rounds": {"floor": floors, "dqueue": syncs}}


def rows(result: dict[str, Any]) -> list[Row]:
    n, dq, fl = result["projects"], result["dqueue"], result["floor"]
    second = dq["second"]["seconds"]
    ratio = result["ratio"]
    return [
        Row(f"item sync of {n:,} unchanged items, {result['latency'] * 1000:.0f} ms/request, "
            f"≤ {result['rate']:.0f} req/s, ≤ {result['concurrency']} in flight: seconds",
            f"{second:.2f} s", f"{fl['seconds']:.2f} s", f"{ratio:.2f}", "≤ 10 s and ≤ 1.30",
            "pass" if second <= 10 and ratio <= 1.3 else "FAIL"),
        Row(f"item sync first run ({n:,} items ingested, webhooks added) (info)",
            f"{dq['first']['seconds']:.2f} s", "-", "-", "-", "info"),
        Row("item sync worker peak RSS (VmHWM) (info)", f"{dq['peak_rss_mb']:.0f} MB", "-", "-", "-", "info"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1811)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    result = run(args.projects, args.latency, args.rate, args.concurrency, args.rounds)
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    for row in rows(result):
        print(f"{row.figure}: {row.dqueue} vs {row.floor} (ratio {row.ratio}) {row.verdict}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
