"""The shared HTTP layer against a real local server: classification, retries, auth, the log writer."""
from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine

from dqueue import http
from dqueue.backoff import Backoff

SECRET = "pw-s3cr3t-9876"


class Server:
    """Answers each request with the next scripted (status, headers, body); records what came."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], str]] = []
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        self.bodies: list[tuple[str, bytes]] = []  # Content-Type, body
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.seen.append((self.command, self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                server.bodies.append((self.headers.get("Content-Type", ""), self.rfile.read(length)))
                status, headers, body = server.script.pop(0) if server.script else (200, {}, "{}")
                data = body.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


class Harness:
    def __init__(self, server: Server, **options: Any) -> None:
        self.lines: list[str] = []
        self.sleeps: list[float] = []
        options.setdefault("policy", Backoff(attempts=3, base=2, max=10))
        self.client = http.HttpClient(server.url, http.Basic(server.url, "dryad", SECRET), timeout=(2, 5),
                                      log=self.lines.append, sleep=self.sleeps.append, **options)


def test_5xx_is_retried_then_transient_and_4xx_is_permanent(server: Server) -> None:
    h = Harness(server)
    server.script = [(503, {}, "busy"), (502, {}, "bad gateway"), (200, {}, '{"ok": 1}')]
    assert h.client.call("GET", server.url + "/a") == {"ok": 1}
    assert len(h.sleeps) == 2 and 1 <= h.sleeps[0] <= 2 and 2 <= h.sleeps[1] <= 4
    server.script = [(500, {}, "x")] * 3
    with pytest.raises(http.Transient, match=r"500.*gave up after 3 attempts"):
        h.client.call("GET", server.url + "/b")
    server.script = [(422, {}, json.dumps({"message": "bad field"}))]
    with pytest.raises(http.Rejected, match="422: bad field") as err:
        h.client.call("POST", server.url + "/c", {"x": 1})
    assert err.value.status == 422 and [m for m, p, _ in server.seen if p == "/c"] == ["POST"]


def test_429_honours_the_configured_reset_header_and_max_wait(server: Server) -> None:
    class GitLabLike(http.HttpClient):
        rate_limit_reset_header = "RateLimit-Reset"

    lines: list[str] = []
    sleeps: list[float] = []
    client = GitLabLike(server.url, None, log=lines.append, sleep=sleeps.append, max_wait=100)
    server.script = [(429, {"RateLimit-Reset": str(int(time.time() + 30))}, "")]
    client.call("GET", server.url + "/r")
    assert 27 <= sleeps[0] <= 31 and any("(RateLimit-Reset)" in line for line in lines)
    server.script = [(429, {"Retry-After": "3600"}, "")]
    with pytest.raises(http.RateLimited) as err:
        client.call("GET", server.url + "/r")
    assert err.value.wait == 3600 and len(sleeps) == 1


def test_timeouts_and_refused_connections_are_transient(server: Server) -> None:
    closed = http.HttpClient("http://127.0.0.1:9", None, policy=Backoff(attempts=2), sleep=lambda s: None)
    with pytest.raises(http.Transient, match="ConnectionError"):
        closed.call("GET", "http://127.0.0.1:9/x")


def test_basic_auth_reaches_its_origin_and_the_log_writer_sees_it_masked(server: Server) -> None:
    h = Harness(server)
    server.script = [(401, {}, f"wrong password\n{SECRET}\r\n")]
    with pytest.raises(http.Rejected, match="401") as err:
        h.client.call("GET", server.url + "/private")
    expected = "Basic " + base64.b64encode(f"dryad:{SECRET}".encode()).decode()
    assert server.seen[-1][2] == expected
    assert SECRET not in str(err.value) and h.lines and not [x for x in h.lines if SECRET in x]
    assert all("\n" not in line and "\r" not in line for line in h.lines)  # one record a line
    assert any(line.endswith("wrong password\\nhidden\\r\\n") for line in h.lines), h.lines


def test_pacer_spaces_a_named_service_through_the_database(engine: Engine) -> None:
    sleeps: list[float] = []
    pacer = http.Pacer(engine, "merritt", 0.5, sleep=sleeps.append)
    pacer()
    pacer()
    assert len(sleeps) == 1 and 0.3 <= sleeps[0] <= 0.5


def test_a_multipart_form_goes_through_the_same_path_and_a_non_json_answer_can_be_asked_for(
        server: Server) -> None:
    h = Harness(server)
    server.script = [(200, {"Content-Type": "text/plain"}, "accepted")]
    answer = h.client.once("POST", server.url + "/object/update", data={"profile": "cdl_dryad_content"},
                           files={"file": ("manifest.checkm", b"#%checkm_0.7\n#%eof\n")}, json_answer=False)
    assert answer == "accepted"
    content_type, body = server.bodies[-1]
    assert content_type.startswith("multipart/form-data") and b"cdl_dryad_content" in body and b"#%checkm_0.7" in body
    assert any(line.endswith(f"POST {server.url}/object/update") for line in h.lines)  # no byte count for a form
