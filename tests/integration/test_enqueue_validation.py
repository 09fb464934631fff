"""The Python API refuses what the table cannot hold, before writing anything, on both databases."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from dqueue import client
from dqueue.store import inspect
from tests import sample_jobs  # noqa: F401
from tests.helpers import job_rows

ARGS = {"path": "/dev/null", "token": "x"}
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize("run_at", [
    dt.datetime(999, 12, 31, 23, 59, 59),  # SQLite stored it unpadded: every listing crashed on it
    dt.datetime(1, 1, 1, tzinfo=PLUS_ONE),  # before year 1 once in UTC
    dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2))),  # after 9999 in UTC
    dt.date(2030, 1, 1),
])
def test_times_outside_the_columns_range_are_refused(engine: Engine, run_at: dt.datetime) -> None:
    c = client.Client(engine=engine)
    with pytest.raises(ValueError, match="run_at"):
        c.enqueue("t.record", ARGS, run_at=run_at)
    with pytest.raises(ValueError, match="run_at"):
        c.enqueue_many([client.JobSpec("t.record", ARGS), client.JobSpec("t.record", ARGS, run_at=run_at)])
    assert job_rows(engine) == {}


@pytest.mark.parametrize("priority", [2 ** 31, -(2 ** 31) - 1, 99999999999])
def test_priorities_outside_the_int_column_are_refused(engine: Engine, priority: int) -> None:
    with pytest.raises(ValueError, match=f"priority {priority} is out of range"):
        client.Client(engine=engine).enqueue("t.record", ARGS, priority=priority)
    assert job_rows(engine) == {}


def test_the_edges_of_the_range_are_stored_and_listed(engine: Engine) -> None:
    c = client.Client(engine=engine)
    early = c.enqueue("t.record", ARGS, run_at=dt.datetime(1000, 1, 1), priority=-(2 ** 31))
    late = c.enqueue("t.record", ARGS, run_at=dt.datetime(9999, 12, 31, 23, 59, 59), priority=2 ** 31 - 1)
    listed = {j.id: (j.run_at, j.priority) for j in inspect.list_jobs(engine)}
    assert listed == {early: (dt.datetime(1000, 1, 1), -(2 ** 31)),
                      late: (dt.datetime(9999, 12, 31, 23, 59, 59), 2 ** 31 - 1)}
