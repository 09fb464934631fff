"""What every fake server in dqueue.testing shares: an HTTP server on 127.0.0.1 served from a daemon
thread (``ServedFake``: start, stop, ``with``), the handler's quiet defaults and its connection reset,
the count-limited faults a test injects (``Faults``), and the ``python -m`` main loop
(``serve_until_signalled``)."""
from __future__ import annotations

import io
import re
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Generic, Self, TypeVar


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no error of ours
            super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler):
    """The request handler of an API fake: keep-alive, no access log, and a way to drop a connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real services: every answer carries Content-Length
    timeout = 120  # an idle or stuck client connection is closed after this long
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, +40 ms each

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default line shows the query string, which may hold a token

    def _reset_connection(self) -> None:
        """Close with a TCP reset and no answer, as a crashed proxy would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()  # the last reference: the descriptor closes now, with RST
        except OSError:
            pass
        self.wfile = io.BytesIO()  # http.server flushes wfile after every request


class DispatchingHandler(FakeHandler):
    """A fake whose GET, POST, PUT and DELETE all go through its ``_dispatch`` (it routes by path)."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        raise NotImplementedError


class ServedFake:
    """A fake served from a daemon thread; its ``__init__`` binds the server and calls ``_listen``."""

    port: int
    url: str

    def _listen(self, server: ThreadingHTTPServer, thread_name: str) -> None:
        self._server = server
        self._thread_name = thread_name
        self.port = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self._thread_name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass
class Fault:
    kind: str
    method: str | None
    path: re.Pattern[str]
    times: int | None  # None: every matching request, until clear_faults()
    delay: float = 0.0  # "slow": seconds to wait before answering normally
    hits: int = 0


F = TypeVar("F", bound=Fault)


class Faults(Generic[F]):
    """The faults injected into one fake, each answering the next ``times`` requests it matches."""

    def __init__(self, fault_type: type[F], kinds: Iterable[str]) -> None:
        self._type = fault_type
        self.kinds = frozenset(kinds)
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def inject(self, kind: str, method: str | None, path: str, times: int | None, **fields: Any) -> F:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(self.kinds)}")
        fault = self._type(kind, method.upper() if method else None, re.compile(path), times, **fields)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, skip: Callable[[F], bool] | None = None) -> F | None:
        """The first fault matching ``method`` and ``path`` that has turns left (and ``skip`` does not
        pass over), counted as used; None if there is none."""
        with self._lock:
            for fault in self._faults:
                if skip is not None and skip(fault):
                    continue
                if (fault.method in (None, method) and fault.path.search(path)
                        and (fault.times is None or fault.times > 0)):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    return fault
        return None


def serve_until_signalled(fake: ServedFake) -> None:
    """Serve ``fake``, print its URL on the first line of stdout, and stop at SIGTERM or SIGINT."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag: the main thread shuts the server down

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake.start()
    print(fake.url, flush=True)
    while not stop.wait(1.0):
        pass
    fake.stop()
