"""Sample jobs, used by ``dqueue demo``, the tests and the benchmarks."""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from .errors import PermanentError
from .jobs import job

log = logging.getLogger("dqueue.samples")


@job("sample.noop")
def noop() -> None:
    """Does nothing: measures the queue's own overhead."""


@job("sample.checksum")
def checksum(path: str, algorithm: str = "sha256") -> str:
    """Stream a file and log its digest: the shape of real work (I/O, CPU, a result)."""
    if algorithm not in hashlib.algorithms_available:
        raise PermanentError(f"unknown digest algorithm {algorithm!r}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    result = digest.hexdigest()
    log.info("sample.checksum path=%s %s=%s bytes=%s", path, algorithm, result, os.path.getsize(path))
    return result


@job("sample.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


@job("sample.append", max_attempts=3, backoff_base=0.2)
def append(path: str, line: str, fail_times: int = 0) -> None:
    """Append ``line`` to ``path``; fails the first ``fail_times`` attempts (counted in the file)."""
    target = Path(path)
    attempts_file = target.with_name(f"{target.name}.{hashlib.md5(line.encode()).hexdigest()[:12]}.tries")
    tries = int(attempts_file.read_text()) + 1 if attempts_file.exists() else 1
    attempts_file.write_text(str(tries))
    if tries <= fail_times:
        raise RuntimeError(f"planned failure {tries} of {fail_times} for {line!r}")
    with open(target, "a") as fh:
        fh.write(line + "\n")
