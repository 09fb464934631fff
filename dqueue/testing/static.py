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
import threading
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from dqueue.testing.server import QuietServer, ServedFake, serve_until_signalled


class _Server(QuietServer):
    owner: StaticServer


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


class StaticServer(ServedFake):
    """Serve ``directory`` read-only over HTTP on 127.0.0.1 (``port`` 0: any free port)."""

    def __init__(self, directory: str | os.PathLike[str], port: int = 0) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise ValueError(f"{self.directory}: not a directory")
        self.lock = threading.Lock()
        self.requests: list[tuple[str, int]] = []
        handler = functools.partial(_Handler, directory=str(self.directory))
        http = _Server(("127.0.0.1", port), handler)
        http.owner = self
        self._listen(http, "static-server")

    def url_for(self, relative: str) -> str:
        """The URL of the file ``relative`` (a path under the directory, '/' separated)."""
        return f"{self.url}/{quote(relative.lstrip('/'))}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dqueue.testing.static", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="the directory to serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        server = StaticServer(args.dir, port=args.port)
    except (ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    serve_until_signalled(server)


if __name__ == "__main__":
    main()
