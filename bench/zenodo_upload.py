"""Copying one large file to the fake Zenodo: the worker's peak memory, and its throughput beside a
plain streaming ``requests`` PUT of the same file to the same server, measured in the same run.

    .venv/bin/python -m bench.zenodo_upload --size-mb 2048      # prints JSON

dqueue's side is the real thing: ``dqueue resource add`` of a manifest naming the file,
``dqueue zenodo send``, and a ``dqueue worker`` process that runs the copy (create deposition,
metadata, streamed upload with MD5, verify, publish).  Its upload time is the one the client
logged for the PUT (the "in X s" of its response line in ``error_info``); the whole copy's time is
reported too.  Peak RSS is the worker process's VmHWM, read from /proc while it is still alive.
The fake Zenodo runs in its own process and keeps only each file's size and MD5.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from . import common

TOKEN = "bench-token-0123456789"
ROOT = Path(__file__).resolve().parents[1]


def make_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data (one random MiB, repeated), written once."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[:left] if left < len(block) else block)
            left -= len(block)


def start_fake() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "dqueue.testing.zenodo", "--port", "0", "--token", TOKEN],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"the fake Zenodo did not start: {url!r}")
    return proc, url


def raw_put(url: str, path: Path) -> dict[str, float]:
    """The reference: create a deposition, then one streaming requests PUT of the file to its bucket."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    dep = requests.post(f"{url}/api/deposit/depositions", json={}, headers=auth, timeout=30).json()
    started = time.monotonic()
    with open(path, "rb") as fh:
        answer = requests.put(f"{dep['links']['bucket']}/{path.name}", data=fh, headers=auth, timeout=(30, 600))
    seconds = time.monotonic() - started
    answer.raise_for_status()
    return {"seconds": seconds, "mb_per_s": path.stat().st_size / seconds / 1e6}


def dqueue_copy(url: str, path: Path, work: Path) -> dict[str, float]:
    db = f"sqlite:///{work / 'bench.sqlite3'}"
    env = {**common.cli_env(), "DQUEUE_DATABASE_URL": db, "DQUEUE_ZENODO_URL": url,
           "DQUEUE_ZENODO_TOKEN": TOKEN, "DQUEUE_ZENODO_REQUEST_INTERVAL": "0",
           "DQUEUE_ZENODO_PUBLISH_WAIT": "0.1", "DQUEUE_FLAG_DIR": str(work / "flags"),
           "DQUEUE_PID_DIR": str(work / "run")}
    dq = [sys.executable, "-m", "dqueue"]
    subprocess.run([*dq, "db", "init"], env=env, check=True, capture_output=True)
    manifest = {"identifier": "10.5061/dryad.bench", "title": "Upload benchmark",
                "creators": [{"name": "Bench, Mark"}],
                "files": [{"name": path.name, "size": path.stat().st_size, "kind": "data", "source": str(path)}]}
    (work / "manifest.json").write_text(json.dumps(manifest))
    rid = subprocess.run([*dq, "resource", "add", str(work / "manifest.json")], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    subprocess.run([*dq, "zenodo", "send", rid], env=env, check=True, capture_output=True)
    log = open(work / "worker.log", "wb")
    sup = subprocess.Popen([*dq, "worker", "-n", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        worker = common.wait_until(lambda: _children(sup.pid), 30)[0]
        started = time.monotonic()
        peak = 0

        def finished() -> bool:
            nonlocal peak
            peak = max(peak, common.vm_hwm_kb(worker))
            state = _query(env, "SELECT state FROM stash_engine_zenodo_copies")
            if state == "error":
                info = _query(env, "SELECT error_info FROM stash_engine_zenodo_copies")
                raise RuntimeError(f"the copy failed: {info}")
            return state == "finished"
        common.wait_until(finished, 1800, interval=0.2)
        whole = time.monotonic() - started
        peak = max(peak, common.vm_hwm_kb(worker))
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(60)
        log.close()
    info = _query(env, "SELECT error_info FROM stash_engine_zenodo_copies") or ""
    match = re.search(r"← 20\d PUT \S*/api/files/\S+ in ([0-9.]+) s", info)
    if match is None:
        raise RuntimeError(f"no upload line in error_info:\n{info[-2000:]}")
    upload = float(match.group(1))
    size = path.stat().st_size
    return {"upload_seconds": upload, "mb_per_s": size / upload / 1e6, "copy_seconds": whole,
            "peak_rss_mb": peak / 1024}


def _children(pid: int) -> list[int]:
    from .cpu import children_of
    return children_of(pid)


def _query(env: dict[str, str], sql: str) -> Any:
    import sqlite3
    path = env["DQUEUE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


def run(size_mb: int = 2048, rounds: int = 2) -> dict[str, Any]:
    """``rounds`` alternating pairs (raw PUT, dqueue copy); the best of each side is compared."""
    size = size_mb * (1 << 20)
    fake, url = start_fake()
    try:
        with tempfile.TemporaryDirectory(prefix="dq-zenodo-bench-") as tmp:
            path = Path(tmp) / "big.bin"
            common.log(f"zenodo: writing {size_mb} MiB test file")
            make_file(path, size)
            raws, copies = [], []
            for i in range(rounds):
                raws.append(raw_put(url, path))
                work = Path(tmp) / f"round{i}"
                work.mkdir()
                copies.append(dqueue_copy(url, path, work))
                common.log(f"zenodo round {i + 1}: raw {raws[-1]['mb_per_s']:.0f} MB/s, dqueue "
                           f"{copies[-1]['mb_per_s']:.0f} MB/s, peak RSS {copies[-1]['peak_rss_mb']:.0f} MB")
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(30)
    best_raw = max(r["mb_per_s"] for r in raws)
    best_dq = max(c["mb_per_s"] for c in copies)
    return {"size_bytes": size, "raw": raws, "dqueue": copies, "ratio": best_dq / best_raw,
            "peak_rss_mb": max(c["peak_rss_mb"] for c in copies)}


def rows(result: dict[str, Any]) -> list[Any]:
    from .report import Row
    mb = result["size_bytes"] / (1 << 20)
    best_raw = max(r["mb_per_s"] for r in result["raw"])
    best_dq = max(c["mb_per_s"] for c in result["dqueue"])
    ratio, peak = result["ratio"], result["peak_rss_mb"]
    return [Row(f"Zenodo copy of one {mb:,.0f} MiB file vs a plain streaming requests PUT",
                f"{best_dq:,.0f} MB/s", f"{best_raw:,.0f} MB/s", f"{ratio:.2f}", "≥ 0.70",
                "pass" if ratio >= 0.70 else "FAIL"),
            Row("worker peak RSS during that copy", f"{peak:.0f} MB", "-", "-", "≤ 100 MB",
                "pass" if peak <= 100 else "FAIL")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.size_mb, args.rounds), indent=2))


if __name__ == "__main__":
    main()
