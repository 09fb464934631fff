"""A fake Zenodo (legacy deposit API and bucket API) on 127.0.0.1, with faults a test can inject.

In a test::

    with FakeZenodo(token="t") as fake:
        fake.inject("429", method="PUT", path=r"/api/files/", times=1, retry_after=1)
        ...  # talk to fake.url
        assert ("PUT", path, 201) in fake.requests

From a benchmark or acceptance test: ``python -m dqueue.testing.zenodo --port 0 --token T`` prints its URL
on the first line of stdout and serves until it is sent SIGTERM or SIGINT.

Uploads are streamed in 1 MiB reads and only their name, size and MD5 are kept, so a 2 GB upload
costs no memory.  ``requests`` records ``(method, path, status)`` of every request (path without its
query string); status 0 means a ``reset`` fault dropped the connection, 499 that the client went away
before sending its whole body.  The token is never written back in any answer or log line.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass

from dqueue.testing import server
from dqueue.testing.server import Faults, ServedFake, serve_until_signalled
from dqueue.testing.zenodo_handler import Server
from dqueue.testing.zenodo_state import Registry

KINDS = {"429", "500", "504", "slow", "reset", "bad_checksum"}


@dataclass
class Fault(server.Fault):
    retry_after: float | str | None = None  # seconds, or an HTTP date sent as it is
    reset_at: float | None = None
    after_bytes: int = 65536


class FakeZenodo(ServedFake):
    def __init__(self, token: str = "fake-token", port: int = 0, verbose: bool = False) -> None:
        self.token = token
        self.verbose = verbose
        self.lock = threading.RLock()
        http = Server(("127.0.0.1", port))
        http.fake = self
        self._listen(http, "fake-zenodo")
        self.state = Registry(self.url)
        self.depositions = self.state.depositions
        self.requests: list[tuple[str, str, int]] = []
        self.request_headers: list[tuple[str, str, dict[str, str]]] = []  # Authorization left out
        self._faults = Faults(Fault, KINDS)
        self._per_minute: int | None = None
        self._window = (0, 0)  # (minute number, requests in it)

    def inject(self, kind: str, *, method: str | None = None, path: str = "", times: int | None = 1,
               retry_after: float | str | None = None, reset_at: float | None = None, delay: float = 0.0,
               after_bytes: int = 65536) -> Fault:
        """Answer the next ``times`` requests matching ``method`` and the regex ``path`` (searched in
        the path without query) with fault ``kind``: "429" (with ``Retry-After: retry_after`` and/or
        ``X-RateLimit-Reset: reset_at``, an epoch), "500", "504", "slow" (wait ``delay`` seconds, then
        answer normally), "reset" (drop the connection unanswered, after reading up to ``after_bytes``
        of a body) or "bad_checksum" (store an upload but report, and keep, a wrong MD5)."""
        return self._faults.inject(kind, method, path, times, retry_after=retry_after, reset_at=reset_at,
                                   delay=delay, after_bytes=after_bytes)

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_rate_limit(self, per_minute: int | None) -> None:
        """Answer 429 for real once more than ``per_minute`` requests arrive in one clock minute."""
        with self.lock:
            self._per_minute = per_minute

    def take_fault(self, method: str, path: str, upload: bool) -> Fault | None:
        # only an upload has a checksum to spoil
        return self._faults.take(method, path, skip=lambda fault: fault.kind == "bad_checksum" and not upload)

    def count_request(self) -> bool:
        """Count one request in this minute's window; True when it is over the enforced limit."""
        with self.lock:
            minute = int(time.time() // 60)
            count = self._window[1] + 1 if self._window[0] == minute else 1
            self._window = (minute, count)
            return self._per_minute is not None and count > self._per_minute

    def rate_headers(self) -> dict[str, str]:
        with self.lock:
            limit = self._per_minute or 100
            minute, count = self._window
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - count)),
                "X-RateLimit-Reset": str((minute + 1) * 60)}

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))
        if self.verbose:
            print(f"{time.strftime('%H:%M:%S')} {method} {path} {status}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dqueue.testing.zenodo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="fake-token")
    parser.add_argument("--rate-limit", type=int, default=None, help="enforce this many requests a minute")
    parser.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = parser.parse_args(argv)
    fake = FakeZenodo(token=args.token, port=args.port, verbose=args.verbose)
    fake.set_rate_limit(args.rate_limit)
    serve_until_signalled(fake)


if __name__ == "__main__":
    main()
