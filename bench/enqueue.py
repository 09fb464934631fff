"""Enqueue rate from one client: ``Client.enqueue`` (one durable commit each) against the floor.

The floor is the same INSERT + COMMIT from a plain PyMySQL loop.  ``Client.enqueue_many``
(one transaction per batch) is reported for information: it is how bulk producers should enqueue.

Run alone: ``python -m bench.enqueue [--jobs 10000]``.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from dqueue import config, samples  # noqa: F401  (samples registers sample.noop)
from dqueue.client import Client, JobSpec

from . import common, floor

ROUNDS = 10

MANY_BATCH = 1000


def _truncate(url: str) -> None:
    common.run_sql(url, "TRUNCATE TABLE delayed_jobs")


def client_rate(url: str, jobs: int) -> dict[str, float]:
    # The client makes its own engine, as dqueue.enqueue() does for an application.
    client = Client(config.load(environ={}, database_url=url))
    try:
        client.enqueue("sample.noop", {})  # open the pooled connection before the clock starts
        started = time.perf_counter()
        for _ in range(jobs):
            client.enqueue("sample.noop", {})
        elapsed = time.perf_counter() - started
    finally:
        client.engine.dispose()
    return {"jobs": jobs, "seconds": elapsed, "rate": jobs / elapsed}


def client_many_rate(url: str, jobs: int, batch: int = MANY_BATCH) -> dict[str, float]:
    client = Client(config.load(environ={}, database_url=url))
    try:
        client.enqueue("sample.noop", {})
        started = time.perf_counter()
        done = 0
        while done < jobs:
            size = min(batch, jobs - done)
            client.enqueue_many([JobSpec("sample.noop") for _ in range(size)])
            done += size
        elapsed = time.perf_counter() - started
    finally:
        client.engine.dispose()
    return {"jobs": jobs, "seconds": elapsed, "rate": jobs / elapsed, "batch": batch}


def run(jobs: int = 10_000) -> dict[str, Any]:
    with common.scratch_db("enqueue") as url:
        # Floor and client alternate in ROUNDS short rounds: the disk's fsync time drifts over
        # seconds (a virtual disk here), and two long halves let the drift land on one side.
        part = max(jobs // ROUNDS, 1)
        parts: dict[str, list[dict[str, float]]] = {"dqueue": [], "floor": []}
        for _ in range(ROUNDS):
            parts["floor"].append(floor.insert_rate(url, part))
            _truncate(url)
            parts["dqueue"].append(client_rate(url, part))
            _truncate(url)
        many = client_many_rate(url, jobs)
    out: dict[str, Any] = {"jobs": ROUNDS * part, "enqueue_many": many, "rounds": ROUNDS}
    for side, runs in parts.items():
        seconds = sum(r["seconds"] for r in runs)
        out[side] = {"jobs": ROUNDS * part, "seconds": seconds, "rate": ROUNDS * part / seconds}
    common.log(f"enqueue: dqueue {out['dqueue']['rate']:.0f}/s, floor {out['floor']['rate']:.0f}/s, "
               f"enqueue_many {many['rate']:.0f}/s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(run(args.jobs), indent=2))


if __name__ == "__main__":
    main()
