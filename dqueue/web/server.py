"""Serving the app with waitress, a production WSGI server, and stopping it on request.

waitress's own ``serve()`` stops only on KeyboardInterrupt/SystemExit raised inside its loop.  Here
the loop runs one poll at a time and checks a stop flag in between, so a signal handler (or a test
in another thread) only sets the flag: nothing is raised into waitress's code, and the loop ends
within ``POLL`` seconds.  Requests already read then get ``DRAIN`` seconds to be answered.
"""
from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

log = logging.getLogger("dqueue.web")
POLL = 0.2  # seconds between checks of the stop flag while idle
DRAIN = 5.0  # seconds the request threads get to finish at stop
CHANNEL_TIMEOUT = 60  # an idle keep-alive connection is closed after this many seconds


class ServeError(OSError):
    """The server could not listen (the port is taken, the address is not this host's)."""


class Server:
    """waitress serving ``app`` on ``host``:``port`` (0: any free port) with ``threads`` threads."""

    def __init__(self, app: Any, host: str, port: int, threads: int, max_body: int) -> None:
        self._map: dict[int, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._server = create_server(
                app, map=self._map, host=host, port=port, threads=threads,
                # The app answers 413 in JSON up to twice the limit; waitress refuses what is
                # larger without reading it (its answer is text/plain) and never buffers more.
                max_request_body_size=2 * max_body + 1,
                ident="dqueue", expose_tracebacks=False, channel_timeout=CHANNEL_TIMEOUT,
                clear_untrusted_proxy_headers=True)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens: (host, port) of each socket (a host name may resolve to several)."""
        listen = getattr(self._server, "effective_listen", None)
        if listen is None:
            listen = [(self._server.effective_host, self._server.effective_port)]
        return [(str(h), int(p)) for h, p in listen]

    @property
    def urls(self) -> list[str]:
        return [f"http://{f'[{host}]' if ':' in host else host}:{port}" for host, port in self.addresses]

    @property
    def url(self) -> str:
        return self.urls[0]

    def serve(self) -> None:
        """Serve until ``stop()``; then let running requests finish and close every socket."""
        try:
            while self._map and not self._stop.is_set():
                wasyncore.loop(timeout=POLL, map=self._map, count=1)
            self._drain()
        finally:
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=DRAIN)
            wasyncore.close_all(self._map)

    def _drain(self) -> None:
        """Accept no more connections; answer the requests already read, for DRAIN seconds at most
        (a response is written by this loop, so it must keep turning while they finish)."""
        for obj in self._map.values():
            if isinstance(obj, BaseWSGIServer):
                obj.accepting = False
        deadline = time.monotonic() + DRAIN
        while time.monotonic() < deadline and any(
                channel.requests or channel.total_outbufs_len
                for channel in list(self._map.values()) if isinstance(channel, HTTPChannel)):
            wasyncore.loop(timeout=0.05, map=self._map, count=1)

    def stop(self) -> None:
        """Ask ``serve()`` to return (safe from a signal handler or another thread)."""
        self._stop.set()

    # In a thread, for tests: ``with Server(...) as server: requests.get(server.url + ...)``.
    def __enter__(self) -> Server:
        self._thread = threading.Thread(target=self.serve, name="dqueue-web", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=DRAIN + 5)
