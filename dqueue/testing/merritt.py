"""A fake Merritt (deposit API and local-id search) on 127.0.0.1, with faults a test can inject.

In a test::

    with StaticServer(staging) as web, FakeMerritt(user="u", password="p", visible_after=0.5) as fake:
        fake.inject("503", path=r"^/object/update", times=2)
        ...  # POST {fake.url}/object/update, then poll {fake.url}/api/cdl_dryad/local_id_search?terms=DOI
        assert fake.wait_idle() and fake.deposits[-1].status is JobStatus.COMPLETED

From a demo or acceptance test: ``python -m dqueue.testing.merritt --port 0 --user U --password P``
prints its URL on the first line of stdout and serves until it is sent SIGTERM or SIGINT.

Like Merritt's ingest, a deposit is answered at once (``bat:batchState``, ``QUEUED``) and carried out
in the background: every URL of the manifest is fetched (``fetch_timeout`` each) and its size and
digest checked.  Only if all match does a new version appear, and ``local_id_search`` shows it only
``visible_after`` seconds later.  Otherwise nothing ever appears; ``deposits[i].reason`` says why.
``requests`` records ``(method, path, status)`` of every request; status 0 is a ``reset`` fault.
The password never appears in an answer or a log line.  docs/repository.md describes the endpoints.
"""
from __future__ import annotations

import argparse
import hashlib
import mimetypes
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from dqueue.repository.checkm import Entry
from dqueue.testing.merritt_handler import Server
from dqueue.testing.merritt_state import Deposit, IngestFailure, JobStatus, Store, StoredFile
from dqueue.testing.server import Fault, Faults, ServedFake, serve_until_signalled

KINDS = {"500", "502", "503", "slow", "reset", "401"}
BLOCK = 1 << 20
KEPT = {"mrt-delete.txt", "mrt-datacite.xml"}  # files the ingest reads, not only stores
DATACITE = "{http://datacite.org/schema/kernel-4}"

__all__ = ["FakeMerritt", "Fault", "JobStatus", "main"]


class FakeMerritt(ServedFake):
    def __init__(self, user: str = "merritt-user", password: str = "merritt-password", *,
                 collection: str = "cdl_dryad", profiles: Iterable[str] = ("cdl_dryad_content",), port: int = 0,
                 visible_after: float = 0.0, fetch_timeout: float = 10.0, verbose: bool = False) -> None:
        self.user, self.password = user, password
        self.collection = collection
        self.profiles = frozenset(profiles)
        self.visible_after = visible_after
        self.fetch_timeout = fetch_timeout
        self.verbose = verbose
        self.lock = threading.RLock()
        self.store = Store(collection)
        self.deposits = self.store.deposits
        self.requests: list[tuple[str, str, int]] = []
        self._faults = Faults(Fault, KINDS)
        self._workers: list[threading.Thread] = []
        http = Server(("127.0.0.1", port))
        http.fake = self
        self._listen(http, "fake-merritt")
        # Merritt pulls from the operator's server directly: no proxy from the environment in between.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- faults -------------------------------------------------------------------------------

    def inject(self, kind: str, *, method: str | None = None, path: str = "", times: int | None = 1,
               delay: float = 0.0) -> Fault:
        """Answer the next ``times`` requests matching ``method`` and the regex ``path`` (searched in the
        path without query) with fault ``kind``: "500", "502", "503" (an error page), "401" (as if the
        credentials were wrong), "slow" (wait ``delay`` seconds, then answer normally) or "reset" (drop
        the connection unanswered).  Faults come before the credentials are checked."""
        return self._faults.inject(kind, method, path, times, delay=delay)

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        return self._faults.take(method, path)

    # -- inspection ---------------------------------------------------------------------------

    @property
    def failures(self) -> list[Deposit]:
        with self.lock:
            return [d for d in self.deposits if d.status is JobStatus.FAILED]

    def versions(self, local_id: str) -> list[int]:
        """Every version number the object bound to ``local_id`` has, visible yet or not."""
        with self.lock:
            obj = self.store.find(local_id)
            return [v.number for v in obj.versions] if obj else []

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every background ingest has ended; False if some are still running at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in workers)

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))
        if self.verbose:
            print(f"{time.strftime('%H:%M:%S')} {method} {path} {status}", file=sys.stderr, flush=True)

    # -- the asynchronous ingest ----------------------------------------------------------------

    def ingest(self, deposit: Deposit) -> None:
        """Carry out an accepted deposit in the background, as Merritt's ingest queue does."""
        worker = threading.Thread(target=self._ingest, args=(deposit,), name=f"fake-merritt-{deposit.batch_id}",
                                  daemon=True)
        with self.lock:
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _ingest(self, deposit: Deposit) -> None:
        try:
            files: dict[str, StoredFile] = {}
            deleted: list[str] = []
            erc = None
            for entry in deposit.entries:
                stored, kept = self._fetch(entry)
                if entry.file_name == "mrt-delete.txt":
                    # Merritt moves it to system/ and applies it to updates only (HandlerDescribe, HandlerTransfer)
                    deleted = [line.strip() for line in kept.decode("utf-8").splitlines() if line.strip()]
                    continue
                if entry.file_name == "mrt-datacite.xml":
                    erc = _erc(kept)
                files[stored.pathname] = stored
            with self.lock:
                self.store.commit(deposit, files, deleted if deposit.update else [],
                                  time.monotonic() + self.visible_after, erc)
        except IngestFailure as exc:
            with self.lock:
                self.store.fail(deposit, str(exc))
        except Exception as exc:  # noqa: BLE001 - a fake's bug must show as a failed deposit, not vanish
            with self.lock:
                self.store.fail(deposit, f"fake Merritt error: {exc!r}")

    def _fetch(self, entry: Entry) -> tuple[StoredFile, bytes]:
        name = entry.file_name
        sha256 = hashlib.sha256()
        declared = hashlib.new(entry.hash_algorithm.hashlib_name) if entry.hash_algorithm else None
        kept = bytearray()
        size = 0
        try:
            with self._opener.open(entry.url, timeout=self.fetch_timeout) as response:
                while block := response.read(BLOCK):
                    size += len(block)
                    sha256.update(block)
                    if declared is not None:
                        declared.update(block)
                    if name in KEPT and size <= BLOCK:
                        kept += block
        except urllib.error.HTTPError as exc:
            raise IngestFailure(f"{name}: fetching {entry.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IngestFailure(f"{name}: fetching {entry.url} failed: {reason}") from None
        if entry.size is not None and size != entry.size:
            raise IngestFailure(f"{name}: size mismatch: manifest says {entry.size}, fetched {size} bytes")
        if declared is not None and entry.hash_algorithm and declared.hexdigest() != entry.hash_value:
            raise IngestFailure(f"{name}: {entry.hash_algorithm.value} mismatch: manifest says {entry.hash_value}, "
                                f"fetched {declared.hexdigest()}")
        mime = entry.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return StoredFile(f"producer/{name}", size, sha256.hexdigest(), mime), bytes(kept)


def _erc(xml: bytes) -> tuple[str, str, str] | None:
    """(who, what, when) from mrt-datacite.xml, as Merritt fills erc_* from it; None if unreadable."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    who = "; ".join(e.text or "" for e in root.iter(f"{DATACITE}creatorName")) or "(:unas)"
    title = root.find(f"{DATACITE}titles/{DATACITE}title")
    year = root.find(f"{DATACITE}publicationYear")
    return who, (title.text or "(:unas)") if title is not None else "(:unas)", (
        (year.text or "(:unas)") if year is not None else "(:unas)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dqueue.testing.merritt", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="merritt-user")
    parser.add_argument("--password", default="merritt-password")
    parser.add_argument("--collection", default="cdl_dryad")
    parser.add_argument("--profile", action="append", help="a profile deposits may name (repeatable; default "
                        "<collection>_content)")
    parser.add_argument("--visible-after", type=float, default=0.0, help="seconds before a new version shows")
    parser.add_argument("--fetch-timeout", type=float, default=10.0, help="seconds per file fetch")
    parser.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = parser.parse_args(argv)
    try:
        fake = FakeMerritt(args.user, args.password, collection=args.collection,
                           profiles=args.profile or [f"{args.collection}_content"], port=args.port,
                           visible_after=args.visible_after, fetch_timeout=args.fetch_timeout,
                           verbose=args.verbose)
    except OSError as exc:  # e.g. the port is taken
        parser.exit(2, f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}\n")
    serve_until_signalled(fake)


if __name__ == "__main__":
    main()
