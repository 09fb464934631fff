"""Helpers for the web API tests: tokens, the app served by waitress in a thread, a small client."""
from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import requests
from sqlalchemy import Engine

from dqueue import config
from dqueue.web.app import create_app
from dqueue.web.server import Server
from tests.helpers import start_cli, wait_until

TOKEN = "web-api-token-0123456789"
HASHED_TOKEN = "second-web-token-abcdefghij"  # configured by its SHA-256 only
TOKENS = (TOKEN, "sha256:" + hashlib.sha256(HASHED_TOKEN.encode()).hexdigest())
TIMEOUT = 30  # seconds per request: an answer that never comes fails the test, not hangs it


class Api:
    """Requests to a served app, with the bearer token unless told otherwise."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def call(self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def web_settings(settings: config.Settings, **web: Any) -> config.Settings:
    """``settings`` with the test tokens and any ``web_<field>`` given (``tokens=()`` for none)."""
    values = {"web_tokens": TOKENS, **{f"web_{k}": v for k, v in web.items()}}
    return settings.replace(**values)


@contextmanager
def served(engine: Engine, settings: config.Settings, **web: Any) -> Iterator[Api]:
    """The app on ``engine`` served by waitress on 127.0.0.1 (a free port) in a thread."""
    settings = web_settings(settings, **web)
    s = settings.web
    with Server(create_app(engine, settings), "127.0.0.1", 0, s.threads, s.max_body) as server:
        api = Api(server.url)
        try:
            yield api
        finally:
            api.session.close()


def body(response: requests.Response) -> dict[str, Any]:
    """The JSON body of any answer; fails the test if it is not JSON (an HTML page, a traceback)."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), \
        (response.status_code, response.headers, response.text[:500])
    data = json.loads(response.text)
    assert isinstance(data, dict)
    return data


def assert_json_error(response: requests.Response, status: int) -> dict[str, Any]:
    """An error answer: that status, a JSON body with error and message, and no traceback."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    data = body(response)
    assert data["status"] == status and data["error"] and "message" in data
    assert "Traceback" not in response.text and 'File "' not in response.text
    return data


LISTENING = re.compile(r"dqueue web listening on (http://\S+)")


@contextmanager
def web_process(db_url: str, log: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], Api]]:
    """The real ``dqueue web`` on a free port; on exit it must stop on SIGTERM with status 0."""
    env = {"DQUEUE_WEB_TOKENS": ",".join(TOKENS), **env}
    proc = start_cli(["web", "--port", "0", *args], db_url, log=log, **env)
    try:
        def listening() -> str | None:
            found = LISTENING.search(log.read_text()) if log.exists() else None
            if found is None and proc.poll() is not None:
                raise AssertionError(f"dqueue web exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            return found.group(1) if found else None
        api = Api(wait_until(listening, timeout=30, message="dqueue web to listen"))
        yield proc, api
        api.session.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"dqueue web did not stop on SIGTERM:\n{log.read_text()[-3000:]}") from None
    assert proc.returncode == 0, log.read_text()[-3000:]
