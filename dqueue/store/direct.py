"""A worker's held connection for single statements: autocommit, compiled SQL, no ORM-layer cost.

The two things a worker does many times a second are an idle poll (a read) and ending a job
(one DELETE or UPDATE).  Each is a single statement, so in autocommit it is atomic and durable by
itself and costs one round trip, where a transaction costs two (the statement, then COMMIT).
The SQL is compiled once from the SQLAlchemy statement and sent through the DBAPI cursor,
because SQLAlchemy's per-statement handling cost as much client CPU as the round trip.  Driver
errors are raised as SQLAlchemy's DBAPIError, like everywhere else in the store, and drop the
connection so the next call opens a fresh one.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from .engine import SQLITE_FORMAT, is_mysql


class Direct:
    """Not thread-safe: one per worker main thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._cursor: Any = None
        self._compiled: dict[Any, tuple[str, Any, dict[str, Any]]] = {}
        self._sqlite = engine.dialect.name == "sqlite"

    def fetch_one(self, stmt: ClauseElement, params: dict[str, Any]) -> tuple[Any, ...]:
        cursor = self._run(stmt, params)
        return tuple(cursor.fetchone())

    def execute(self, stmt: ClauseElement, params: dict[str, Any]) -> int:
        """Run one DML statement, committed on its own; returns the number of rows it changed."""
        return int(self._run(stmt, params).rowcount)

    def close(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except self.engine.dialect.loaded_dbapi.Error:
                pass

    def _run(self, stmt: ClauseElement, params: dict[str, Any]) -> Any:
        sql, order, fixed = self._compile(stmt)
        values = {**fixed, **params}
        if self._sqlite:  # what SQLAlchemy's DateTime would have stored
            values = {k: v.strftime(SQLITE_FORMAT) if isinstance(v, dt.datetime) else v
                      for k, v in values.items()}
        args = tuple(values[k] for k in order) if order else values
        try:
            cursor = self._open()
            cursor.execute(sql, args)
            return cursor
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self.close()
            raise DBAPIError.instance(sql, args, exc, self.engine.dialect.loaded_dbapi.Error) from exc

    def _compile(self, stmt: ClauseElement) -> tuple[str, Any, dict[str, Any]]:
        if stmt not in self._compiled:
            compiled: Any = stmt.compile(dialect=self.engine.dialect)  # an SQLCompiler
            # The statement's own literals (e.g. --min-priority, NULL in SET) are fixed here.
            fixed = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
            self._compiled[stmt] = (compiled.string, compiled.positiontup, fixed)
        return self._compiled[stmt]

    def _open(self) -> Any:
        if self._cursor is None:
            pooled = self.engine.raw_connection()
            # Detached, it never goes back to the pool: it stays in autocommit for its lifetime
            # and holds no transaction (no metadata lock that would stall a migration).  SQLite
            # connections are in autocommit already (see engine.py).
            conn: Any = pooled.driver_connection
            pooled.detach()
            if is_mysql(self.engine):
                conn.autocommit(True)
            self._conn, self._cursor = conn, conn.cursor()
        return self._cursor
