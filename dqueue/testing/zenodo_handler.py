"""The fake Zenodo's HTTP side: routing, bodies, faults and answers (state lives in zenodo_state)."""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from dqueue.testing.server import DispatchingHandler, QuietServer
from dqueue.testing.zenodo_state import ApiError

if TYPE_CHECKING:
    from dqueue.testing.zenodo import FakeZenodo, Fault

BLOCK = 1 << 20
DEPOSITIONS = re.compile(r"^/api/deposit/depositions(?:/(\d+)(?:/(files|actions/(\w+)))?)?/?$")
BUCKET = re.compile(r"^/api/files/([0-9a-f]+)(?:/(.+))?$")


class Server(QuietServer):
    fake: FakeZenodo

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)


class _Handler(DispatchingHandler):
    server_version = "FakeZenodo/1.0"

    @property
    def fake(self) -> FakeZenodo:
        return cast(Server, self.server).fake

    # -- request flow -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self._path, self._query = split.path, parse_qs(split.query)
        self._chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        self._left: int | None = int(length) if length is not None and length.isdigit() else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        with self.fake.lock:
            self.fake.request_headers.append((self.command, self._path, headers))
        upload = self.command == "PUT" and bool(BUCKET.match(self._path))
        fault = self.fake.take_fault(self.command, self._path, upload)
        try:
            if fault is not None and self._apply(fault):
                return
            if self.fake.count_request():
                retry = max(1, math.ceil(int(self.fake.rate_headers()["X-RateLimit-Reset"]) - time.time()))
                raise _Answer(429, {"message": "Too Many Requests", "status": 429}, {"Retry-After": str(retry)})
            if not self._authorized():
                raise ApiError(401, "The server could not verify that you are authorized to access the URL "
                                    "requested. You either supplied the wrong credentials or your browser "
                                    "doesn't understand how to supply the credentials required.")
            answer = self._route(fault)
            if answer is not None:
                self._reply(*answer)
        except ApiError as exc:
            self._reply(exc.status, exc.body())
        except _Answer as answer:
            self._reply(answer.status, answer.body, answer.headers)
        except OSError:
            self.close_connection = True  # the client went away mid-answer

    def _apply(self, fault: Fault) -> bool:
        """Carry out a fault; True when it has answered (or dropped) the request."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "bad_checksum":
            return False  # acted on in _upload
        if fault.kind == "reset":
            if self._left:
                self.rfile.read(min(self._left, fault.after_bytes))
            self._abort()
            return True
        headers = {}
        if fault.kind == "429":
            if fault.retry_after is not None:
                value = fault.retry_after
                headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
            if fault.reset_at is not None:
                headers["X-RateLimit-Reset"] = f"{fault.reset_at:.0f}"
            self._reply(429, {"message": "Too Many Requests", "status": 429}, headers)
        elif fault.kind == "500":
            self._reply(500, None)  # Zenodo's 500 has no error body
        else:
            self._reply(504, b"<html><body><h1>504 Gateway Time-out</h1></body></html>", {}, "text/html")
        return True

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else self._query.get("access_token", [""])[0]
        return hmac.compare_digest(given.encode(), self.fake.token.encode())

    def _route(self, fault: Fault | None) -> tuple[int, Any] | None:
        """Carry out the request; return (status, JSON body), or None when it has been dealt with."""
        state, method = self.fake.state, self.command
        lock = self.fake.lock
        if m := DEPOSITIONS.match(self._path):
            dep_id, sub, action = int(m[1]) if m[1] else None, m[2], m[3]
            if dep_id is None:
                if method == "GET":
                    with lock:
                        return 200, [state.to_json(d) for d in state.depositions.values()]
                self._allow("POST")
                body = self._read_json()
                with lock:
                    return 201, state.to_json(state.create(body))
            if action:
                self._allow("POST")
                self._drain()  # actions take no body
                return self._action(dep_id, action)
            if sub == "files":
                self._allow("GET")
                with lock:
                    dep = state.get(dep_id)
                    return 200, [state.deposition_file_json(dep, f) for f in dep.files.values()]
            if method == "GET":
                with lock:
                    return 200, state.to_json(state.get(dep_id))
            if method == "PUT":
                body = self._read_json()
                with lock:
                    return 200, state.to_json(state.update(dep_id, body))
            self._allow("DELETE")
            with lock:
                state.delete(dep_id)
            return 201, None
        if m := BUCKET.match(self._path):
            bucket, name = m[1], unquote(m[2]) if m[2] else None
            if name is None:
                self._allow("GET")
                with lock:
                    return 200, state.bucket_json(state.by_bucket(bucket))
            if method == "PUT":
                return self._upload(bucket, name, fault)
            self._allow("DELETE")
            with lock:
                state.delete_file(state.by_bucket(bucket), name)
            return 204, None
        raise ApiError(404, "The requested URL was not found on the server.")

    def _action(self, dep_id: int, action: str) -> tuple[int, Any]:
        state = self.fake.state
        handlers = {"publish": (state.publish, 202), "edit": (state.edit, 201), "discard": (state.discard, 201),
                    "newversion": (state.newversion, 201)}
        if action not in handlers:
            raise ApiError(404, "The requested URL was not found on the server.")
        run, status = handlers[action]
        with self.fake.lock:
            return status, state.to_json(run(dep_id))

    def _upload(self, bucket: str, name: str, fault: Fault | None) -> tuple[int, Any] | None:
        state = self.fake.state
        with self.fake.lock:
            dep = state.by_bucket(bucket)
            state.check_upload(dep, name, None if self._chunked else self._left)
        assert self._left is not None
        md5, got, length = hashlib.md5(), 0, self._left
        try:
            while got < length:
                block = self.rfile.read(min(BLOCK, length - got))
                if not block:
                    break
                md5.update(block)
                got += len(block)
        except OSError:
            pass
        self._left = 0
        if got < length:  # the client went away: Zenodo keeps no partial file
            self.close_connection = True
            self.fake.record(self.command, self._path, 499)
            return None
        digest = md5.hexdigest()
        if fault is not None and fault.kind == "bad_checksum":
            digest = hashlib.md5(digest.encode()).hexdigest()
        with self.fake.lock:
            return 201, state.bucket_file_json(dep, state.add_file(dep, name, got, digest))

    # -- bodies and answers -------------------------------------------------------------------

    def _allow(self, method: str) -> None:
        if self.command != method:
            raise ApiError(405, "The method is not allowed for the requested URL.")

    def _read_json(self) -> Any:
        if not self.headers.get("Content-Type", "").lower().startswith("application/json"):
            raise ApiError(415, "Unsupported Media Type: send application/json.")
        raw = self._read_body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "The browser (or proxy) sent a request that this server could not "
                                "understand.") from None

    def _read_body(self) -> bytes:
        if self._chunked:
            return b"".join(self._chunks())
        data = self.rfile.read(self._left or 0)
        self._left = 0
        return data

    def _chunks(self) -> Iterator[bytes]:
        self._chunked = False
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _drain(self) -> None:
        """Read and drop an unread request body, so the client sees our answer, not a broken pipe."""
        if self._chunked:
            for _ in self._chunks():
                pass
        while self._left:
            block = self.rfile.read(min(BLOCK, self._left))
            if not block:
                self.close_connection = True
                break
            self._left -= len(block)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None,
               content_type: str = "application/json") -> None:
        self._drain()
        if isinstance(body, bytes):
            data = body
        else:
            data = b"" if body is None else json.dumps(body).encode()
        # Recorded first: a client that has its answer must find the request in fake.requests.
        self.fake.record(self.command, self._path, status)
        self.send_response(status)
        merged = {**self.fake.rate_headers(), **(headers or {})}
        for key, value in merged.items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _abort(self) -> None:
        """Close with a TCP reset and no answer, as a crashed proxy would."""
        self.fake.record(self.command, self._path, 0)
        self._reset_connection()


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers
