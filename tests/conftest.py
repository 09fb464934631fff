"""Fixtures: every storage test runs on SQLite and on MariaDB, each in a database of its own.

MariaDB is at $DQUEUE_TEST_MARIADB_URL (default mysql+pymysql://root@127.0.0.1:3306/).  When it
is unreachable the MariaDB tests FAIL; they are skipped only if DQUEUE_SKIP_MARIADB=1 is set
outside CI (CI=true always fails them).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from dqueue import config
from dqueue.store import make_engine, migrate

if TYPE_CHECKING:
    from dqueue.testing.gitlab import FakeGitLab
    from dqueue.testing.merritt import FakeMerritt
    from dqueue.testing.static import StaticServer
    from dqueue.testing.zenodo import FakeZenodo

MARIADB_URL = os.environ.get("DQUEUE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")
BACKENDS = ["sqlite", "mariadb"]
GITLAB_TOKEN = "glpat-fake-gitlab-token"  # what the ``gitlab`` fixture accepts


def _mariadb_server() -> Engine:
    return create_engine(make_url(MARIADB_URL).set(database=None), pool_pre_ping=True)


def _mariadb_unreachable(exc: Exception) -> None:
    reason = f"MariaDB at {MARIADB_URL} is unreachable: {exc}"
    if os.environ.get("DQUEUE_SKIP_MARIADB") == "1" and os.environ.get("CI") != "true":
        pytest.skip(reason + " (DQUEUE_SKIP_MARIADB=1)")
    pytest.fail(reason + "; start it (see README) — MariaDB tests never skip in CI", pytrace=False)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test; dropped afterwards."""
    name = f"dq_test_{uuid.uuid4().hex[:12]}"
    server = _mariadb_server()
    try:
        with server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        server.dispose()
        _mariadb_unreachable(exc)
    try:
        yield make_url(MARIADB_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dqueue.sqlite3'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database, once on SQLite and once on MariaDB."""
    if request.param == "mariadb":
        request.applymarker(pytest.mark.mariadb)
        return str(request.getfixturevalue("mariadb_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database with the current schema."""
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(db_url: str) -> config.Settings:
    """Settings for fast tests: short heartbeats and polls."""
    return config.load(environ={}, database_url=db_url, heartbeat_interval=0.5, stale_after=3.0,
                       sleep_delay=0.02, grace_period=5.0, kill_after=2.0, backoff_base=0.1)


@pytest.fixture
def fake() -> Iterator["FakeZenodo"]:
    """A fake Zenodo on 127.0.0.1 that accepts tests.zenodo_support.TOKEN."""
    from dqueue.testing.zenodo import FakeZenodo
    from tests.zenodo_support import TOKEN
    with FakeZenodo(token=TOKEN) as server:
        yield server


@pytest.fixture
def merritt_visible_after() -> float:
    """Seconds before the ``merritt`` fixture shows a new version; a module may override this fixture."""
    return 0.2


@pytest.fixture
def merritt(merritt_visible_after: float) -> Iterator["FakeMerritt"]:
    """A fake Merritt on 127.0.0.1 that accepts tests.repository_support.USER and PASSWORD."""
    from dqueue.testing.merritt import FakeMerritt
    from tests.repository_support import PASSWORD, USER
    with FakeMerritt(USER, PASSWORD, fetch_timeout=5, visible_after=merritt_visible_after) as server:
        yield server


@pytest.fixture
def web(tmp_path: Path) -> Iterator["StaticServer"]:
    """A static server over tmp_path/staging, the folder deposits are staged in (created here)."""
    from dqueue.testing.static import StaticServer
    (tmp_path / "staging").mkdir()
    with StaticServer(tmp_path / "staging") as server:
        yield server


@pytest.fixture
def gitlab() -> Iterator["FakeGitLab"]:
    """A started fake GitLab on 127.0.0.1: 10 projects in group item-bank/items (id 42), 3 commits
    each, no hooks, no latency; it accepts the token ``GITLAB_TOKEN`` (also ``gitlab.token``).  A test
    changes it through its methods (add_projects, push, inject, latency...)."""
    from dqueue.testing.gitlab import FakeGitLab
    with FakeGitLab(projects=10, token=GITLAB_TOKEN) as server:
        yield server
