"""Which database errors are outages (wait and retry) and which are failures (stop and say so).

One classification for every caller (worker loop, monitor, supervisor).  Only connection-level
trouble is retried: a lost or refused connection, a server going away or shutting down, too
many connections, lock-wait timeouts and deadlocks.  Access denied, a missing table or column
and a read-only database are failures: retrying them only hides a broken deployment (issue 7:
a user without DELETE made ``worker --burst`` retry for ever).
"""
from __future__ import annotations

import enum
import sqlite3
from typing import Any

from sqlalchemy.exc import DBAPIError


class Kind(enum.Enum):
    OUTAGE = "outage"  # retry with backoff: the database will answer again
    FAILURE = "failure"  # a permission or schema problem: no retry will fix it


# MySQL/MariaDB error numbers.
MYSQL_FAILURES = {
    1044: "access denied to the database",
    1045: "access denied (user or password)",
    1049: "unknown database",
    1054: "unknown column (schema out of date?)",
    1064: "SQL syntax error (server version?)",
    1142: "command denied on a table (missing privilege)",
    1143: "command denied on a column (missing privilege)",
    1146: "no such table (run 'dqueue db init')",
    1227: "access denied (needs a privilege such as SUPER)",
    1290: "the server is read-only (--read-only)",
    1370: "command denied on a routine (missing privilege)",
    1792: "cannot write in a read-only transaction",
    1836: "the server is read-only",
}
MYSQL_OUTAGES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161,  # aborted / network read-write
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection killed
    2002, 2003, 2005, 2006, 2013, 2055,  # cannot connect, server gone away, lost connection
    4031,  # disconnected by the server for inactivity
}
SQLITE_FAILURES = {
    "no such table": "no such table (run 'dqueue db init')",
    "no such column": "unknown column (schema out of date?)",
    "has no column named": "unknown column (schema out of date?)",
    "readonly database": "the database file is read-only",
    "unable to open database file": "cannot open the database file (path or permissions)",
}


def classify(exc: BaseException) -> Kind:
    """Whether ``exc`` (a SQLAlchemy DBAPIError or a driver error) is an outage or a failure."""
    return Kind.FAILURE if failure_reason(exc) else Kind.OUTAGE


def failure_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is a failure no retry will fix, or None for a connection-level outage.

    Errors in neither list count as outages when the driver calls them operational (PyMySQL
    does so for every error number it does not know) and as failures otherwise (a programming,
    integrity or data error is the same on every try).
    """
    orig: Any = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        for needle, reason in SQLITE_FAILURES.items():
            if needle in text:
                return reason
        return None if isinstance(orig, sqlite3.OperationalError) else type(orig).__name__
    code = _mysql_errno(orig)
    if code in MYSQL_FAILURES:
        return MYSQL_FAILURES[code]
    if code in MYSQL_OUTAGES:
        return None
    name = type(orig).__name__
    if name in ("OperationalError", "InterfaceError", "InternalError") or isinstance(orig, OSError):
        return None
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return None
    return name


def _mysql_errno(orig: Any) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class DatabaseFailure(Exception):
    """A permission or schema problem met while doing ``what``: the worker stops with EX_CONFIG."""

    def __init__(self, what: str, exc: BaseException) -> None:
        self.what = what
        self.reason = failure_reason(exc) or "database error"
        orig = getattr(exc, "orig", exc)
        statement = " ".join(str(getattr(exc, "statement", "") or "").split())[:120]
        detail = str(orig).splitlines()[0][:300] if str(orig) else type(orig).__name__
        super().__init__(f"during {what}: {self.reason}: {detail}"
                         + (f" [statement: {statement}]" if statement else ""))


def check(exc: BaseException, what: str) -> None:
    """Raise DatabaseFailure if ``exc`` is a failure; return (the caller retries) if an outage."""
    if classify(exc) is Kind.FAILURE:
        raise DatabaseFailure(what, exc) from exc
