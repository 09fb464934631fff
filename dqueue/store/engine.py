"""Creating an engine per dialect: connection settings that the rest of the store relies on."""
from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# Seconds; above innodb_lock_wait_timeout (50 s) so a lock wait ends as MariaDB's own error.
MYSQL_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 70, "write_timeout": 70}


def normalise_url(url: str) -> str:
    """Use PyMySQL for mysql:// and mariadb:// URLs that name no driver."""
    parsed = make_url(url)
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases, in-memory ones and ``file:`` URIs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _sqlite_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime(SQLITE_FORMAT)


def _sqlite_now_plus(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).strftime(SQLITE_FORMAT)


def make_engine(url: str, *, pre_ping: bool = True, timeouts: bool = False, create: bool = True,
                **kwargs: Any) -> Engine:
    """An engine for dqueue's own use.

    Every transaction dqueue runs is ended explicitly (``engine.begin()``, or a Connection whose
    close rolls back), so the pool's reset-on-return ROLLBACK is a wasted round trip per
    transaction; it is off.  ``pre_ping=False`` drops the ping per checkout too, for callers
    that retry every database call themselves (the worker).  ``timeouts`` bounds every network
    wait on MariaDB, so a half-open connection (a silent network partition) surfaces as an error
    the caller retries instead of a read that blocks for ever; dqueue's statements are short.
    ``create=False`` refuses a SQLite file that does not exist (FileNotFoundError) instead of
    creating it and its directories: what the read-only commands use.
    """
    url = normalise_url(url)
    kwargs.setdefault("pool_reset_on_return", None)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, create, **kwargs)
    if backend in ("mysql", "mariadb"):
        if timeouts:
            kwargs.setdefault("connect_args", {}).update(MYSQL_TIMEOUTS)
        return _mysql_engine(url, pre_ping, **kwargs)
    raise ValueError(f"unsupported database {backend!r}: use mysql+pymysql://, mariadb+pymysql:// "
                     "or sqlite:///")


def _mysql_engine(url: str, pre_ping: bool, **kwargs: Any) -> Engine:
    # READ COMMITTED: a locking read takes no gap locks, so claims never block enqueues
    # (delayed_job's REPEATABLE READ range locks were behind its deadlocks, reference 2.1).
    options: dict[str, Any] = {"pool_pre_ping": pre_ping, "pool_recycle": 3600, **kwargs}
    engine = create_engine(url, isolation_level="READ COMMITTED", **options)

    @event.listens_for(engine, "connect")
    def _session_settings(dbapi_conn: Any, record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            # Our sessions speak UTC, so NOW() agrees with UTC_TIMESTAMP() in any SQL we run.
            cur.execute("SET time_zone = '+00:00'")
        dbapi_conn.commit()
    return engine


def _sqlite_engine(url: str, create: bool, **kwargs: Any) -> Engine:
    path = sqlite_file(url)
    if path is not None and create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path is not None and not path.is_file():
        raise FileNotFoundError(f"no database at {path}; run 'dqueue db init'")
    engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        dbapi_conn.create_function("dq_utcnow", 0, _sqlite_now)
        dbapi_conn.create_function("dq_utcnow_plus", 1, _sqlite_now_plus)
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=FULL")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # SQLite has no SELECT ... FOR UPDATE: take the write lock when the transaction starts,
        # so a claim's read and its update cannot interleave with another process's claim.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


def is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def supports_returning(engine: Engine) -> bool:
    return bool(engine.dialect.insert_returning)
