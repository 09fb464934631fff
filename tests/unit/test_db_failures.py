"""One classification of database errors: outages are retried, failures stop the worker."""
from __future__ import annotations

import sqlite3

import pymysql
import pytest
from sqlalchemy.exc import DBAPIError

from dqueue.store.failures import DatabaseFailure, Kind, check, classify


def _wrapped(orig: Exception) -> DBAPIError:
    exc = DBAPIError.instance("DELETE FROM delayed_jobs WHERE id = %s", (1,), orig, pymysql.Error)
    assert isinstance(exc, DBAPIError)
    return exc


@pytest.mark.parametrize("errno", [1044, 1045, 1142, 1143, 1227, 1146, 1054, 1290, 1836])
def test_mysql_permission_schema_and_read_only_errors_are_failures(errno: int) -> None:
    assert classify(_wrapped(pymysql.err.OperationalError(errno, "denied"))) is Kind.FAILURE


@pytest.mark.parametrize("errno", [2002, 2003, 2006, 2013, 1040, 1205, 1213, 1927, 4031, 1053])
def test_mysql_connection_and_lock_errors_are_outages(errno: int) -> None:
    assert classify(_wrapped(pymysql.err.OperationalError(errno, "gone"))) is Kind.OUTAGE


def test_unknown_mysql_errors_follow_the_drivers_class() -> None:
    assert classify(_wrapped(pymysql.err.OperationalError(9999, "?"))) is Kind.OUTAGE
    assert classify(_wrapped(pymysql.err.InterfaceError(0, ""))) is Kind.OUTAGE
    assert classify(_wrapped(pymysql.err.ProgrammingError(9998, "?"))) is Kind.FAILURE


@pytest.mark.parametrize("message, kind", [
    ("no such table: delayed_jobs", Kind.FAILURE),
    ("no such column: process_start", Kind.FAILURE),
    ("table dqueue_processes has no column named up_since", Kind.FAILURE),
    ("attempt to write a readonly database", Kind.FAILURE),
    ("database is locked", Kind.OUTAGE),
    ("disk I/O error", Kind.OUTAGE),
])
def test_sqlite_errors_by_message(message: str, kind: Kind) -> None:
    assert classify(sqlite3.OperationalError(message)) is kind


def test_a_failure_names_what_the_statement_and_the_reason() -> None:
    exc = _wrapped(pymysql.err.OperationalError(1142, "DELETE command denied to user 'u'@'h' for table 'delayed_jobs'"))
    with pytest.raises(DatabaseFailure) as raised:
        check(exc, "record done of job 1")
    line = str(raised.value)
    assert line.startswith("during record done of job 1: command denied on a table (missing privilege)")
    assert "DELETE command denied" in line and "[statement: DELETE FROM delayed_jobs" in line
    assert "\n" not in line
    check(_wrapped(pymysql.err.OperationalError(2013, "lost")), "claim")  # an outage: no raise
