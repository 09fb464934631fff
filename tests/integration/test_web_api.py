"""The web API's frame, served by waitress on SQLite and MariaDB: bearer tokens, JSON errors for every
malformed request (never a 500 with a traceback), body limits, health, the request log, no
connection left checked out."""
from __future__ import annotations

import logging
import socket

import pytest
from sqlalchemy import Engine

from dqueue import config
from dqueue.batch import launch
from dqueue.store import make_engine
from tests.web_support import HASHED_TOKEN, TOKEN, assert_json_error, body, served

AUTHENTICATED = [("POST", "/sync"), ("PUT", "/abandon/1"), ("GET", "/executions/1"), ("POST", "/sync/1")]


@pytest.mark.parametrize("method,path", AUTHENTICATED)
def test_every_endpoint_but_health_and_webhook_needs_a_valid_bearer_token(
        engine: Engine, settings: config.Settings, method: str, path: str) -> None:
    with served(engine, settings) as api:
        for token, header in [(None, None), ("wrong-token-0123456789", None), (None, "Basic " + TOKEN),
                              (None, TOKEN), (TOKEN[:-1], None), (TOKEN + "x", None)]:
            headers = {"Authorization": header} if header else {}
            answer = api.call(method, path, token=token, headers=headers)
            assert_json_error(answer, 401)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in answer.text


def test_plain_and_hashed_tokens_are_both_accepted(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        for token in (TOKEN, HASHED_TOKEN):
            assert_json_error(api.call("GET", "/executions/999", token=token), 404)  # past the token check


def test_without_configured_tokens_every_authenticated_endpoint_refuses(
        engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings, tokens=()) as api:
        for method, path in AUTHENTICATED:
            data = assert_json_error(api.call(method, path), 401)
            assert "no API tokens" in data["message"]
        assert api.call("GET", "/health", token=None).status_code == 200


def test_health_needs_no_token_and_says_up(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        answer = api.call("GET", "/health", token=None)
        assert answer.status_code == 200
        assert body(answer)["status"] == "UP"


def test_health_is_down_on_a_database_without_the_schema(db_url: str, settings: config.Settings) -> None:
    bare = make_engine(db_url)  # the database exists, 'dqueue db init' was never run
    try:
        with served(bare, settings) as api:
            answer = api.call("GET", "/health", token=None)
        assert answer.status_code == 503
        assert body(answer) == {"status": "DOWN", "database": "schema not current"}
    finally:
        bare.dispose()


def test_health_is_down_when_the_database_is_unreachable_and_tells_nothing_about_it(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"mysql+pymysql://dq:pa55-word-xyz@127.0.0.1:{port}/nowhere"
    down = make_engine(url, timeouts=True)
    settings = config.load(environ={}, database_url=url)
    try:
        with served(down, settings) as api, caplog.at_level(logging.WARNING, "dqueue.web"):
            answer = api.call("GET", "/health", token=None)
            assert answer.status_code == 503
            assert body(answer) == {"status": "DOWN", "database": "unreachable"}
            assert "pa55-word-xyz" not in answer.text and str(port) not in answer.text
            # An authenticated endpoint answers 503 in JSON too, not a 500.
            assert_json_error(api.call("GET", "/executions/1"), 503)
        assert "unreachable" in caplog.text and "pa55-word-xyz" not in caplog.text
    finally:
        down.dispose()


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.5", "9223372036854775808", "99999999999999999999999",
                                 "%EF%BC%91", "1e3", "0x10", " 1"])
def test_ids_outside_the_bigint_range_or_not_numbers_are_a_400(
        engine: Engine, settings: config.Settings, raw: str) -> None:
    with served(engine, settings) as api:
        for method, path in [("GET", "/executions/"), ("PUT", "/abandon/"), ("POST", "/sync/")]:
            assert_json_error(api.call(method, path + raw), 400)


def test_the_largest_bigint_is_a_valid_id(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        assert_json_error(api.call("GET", f"/executions/{2 ** 63 - 1}"), 404)


def test_wrong_methods_and_unknown_paths_are_json(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        answer = api.call("GET", "/sync")
        assert_json_error(answer, 405)
        assert "POST" in answer.headers["Allow"]
        assert_json_error(api.call("DELETE", "/executions/1"), 405)
        assert_json_error(api.call("POST", "/health", token=None), 405)
        assert_json_error(api.call("GET", "/nothing/here"), 404)
        assert_json_error(api.call("GET", "/executions/"), 404)


def test_a_body_over_the_limit_is_a_413_whether_declared_or_chunked(
        engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings, max_body=100) as api:
        assert_json_error(api.call("POST", "/webHook", token=None, data=b"x" * 101), 413)
        assert_json_error(api.call("POST", "/sync", data=b"x" * 150), 413)  # before the token check
        chunks = iter([b"x" * 60, b"x" * 60])  # no Content-Length: read until the limit, then 413
        assert api.call("POST", "/webHook", token=None, data=chunks).status_code == 413
        # Far over it, waitress refuses without reading the body (and without calling the app).
        assert api.call("POST", "/webHook", token=None, data=b"x" * 5000).status_code == 413


def test_an_unexpected_error_is_a_generic_500_logged_with_its_traceback(
        engine: Engine, settings: config.Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("internal detail the caller must not see")
    monkeypatch.setattr(launch, "get", broken)
    with served(engine, settings) as api, caplog.at_level(logging.INFO, "dqueue.web"):
        answer = api.call("GET", "/executions/5")
    data = assert_json_error(answer, 500)
    assert "internal detail" not in answer.text and "RuntimeError" not in answer.text
    assert data["requestId"] == answer.headers["X-Request-Id"]
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure and failure[0].exc_info and data["requestId"] in failure[0].getMessage()


def test_one_log_line_per_request_without_the_token(
        engine: Engine, settings: config.Settings, caplog: pytest.LogCaptureFixture) -> None:
    with served(engine, settings) as api, caplog.at_level(logging.INFO, "dqueue.web"):
        api.call("GET", "/executions/77?token=" + TOKEN)
        api.call("GET", "/health", token=None)
        api.call("PUT", "/abandon/x", token="bad-token-0123456789")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("web request: ")]
    assert len(lines) == 3
    assert lines[0].startswith("web request: GET /executions/77 404 ")
    assert lines[1].startswith("web request: GET /health 200 ")
    assert lines[2].startswith("web request: PUT /abandon/x 401 ")
    assert TOKEN not in caplog.text and "bad-token" not in caplog.text


def test_no_connection_stays_checked_out(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings, threads=4) as api:
        for _ in range(10):
            api.call("GET", "/health", token=None)
            api.call("GET", "/executions/3")
            api.call("PUT", "/abandon/3")
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
