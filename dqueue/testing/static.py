"""A static file server over one directory on 127.0.0.1: the operator's web server over the staging
directory, from which Merritt pulls a deposit's files.

In a test::

    with StaticServer(tmp_path) as web:
        url = web.url_for("resource-7/mrt-datacite.xml")

From a demo or acceptance test: ``python -m dqueue.testing.static --dir D --port 0`` prints its URL on
the first line of stdout and serves until it is sent SIGTERM or SIGINT.  ``requests`` records
``(path, status)`` of every request.
"""
from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast
from urllib.parse import quote


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: StaticServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no error of ours
            super().handle_error(request, client_address)


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        owner = cast(_Server, self.server).owner
        with owner.lock:
            owner.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(403, "Directory listing is off")  # a staging area is not for browsing
        return None


class StaticServer:
    """Serve ``directory`` read-only over HTTP on 127.0.0.1 (``port`` 0: any free port)."""

    def __init__(self, directory: str | os.PathLike[str], port: int = 0) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise ValueError(f"{self.directory}: not a directory")
        self.lock = threading.Lock()
        self.requests: list[tuple[str, int]] = []
        handler = functools.partial(_Handler, directory=str(self.directory))
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def url_for(self, relative: str) -> str:
        """The URL of the file ``relative`` (a path under the directory, '/' separated)."""
        return f"{self.url}/{quote(relative.lstrip('/'))}"

    def start(self) -> StaticServer:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="static-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dqueue.testing.static", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="the directory to serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        server = StaticServer(args.dir, port=args.port)
    except (ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag: the main thread shuts the server down

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(server.url, flush=True)
    while not stop.wait(1.0):
        pass
    server.stop()


if __name__ == "__main__":
    main()
