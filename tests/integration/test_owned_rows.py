"""Job-owned application rows, on any table with a ``job_id`` column (here a throwaway one)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, insert, select

from dqueue import jobs, owned
from dqueue.errors import Reschedule
from dqueue.store.queue import NewJob, transaction
from dqueue.store.schema import Timestamp, delayed_jobs
from tests.helpers import execute

things = Table("test_owned_things", MetaData(),
               Column("id", Integer, primary_key=True, autoincrement=True),
               Column("state", String(20), nullable=False),
               Column("job_id", BigInteger, nullable=True),
               Column("updated_at", Timestamp, nullable=True))


@pytest.fixture
def table(engine: Engine) -> Table:
    things.drop(engine, checkfirst=True)
    things.create(engine)
    return things


def _new(engine: Engine, fail: bool = False) -> tuple[int, int]:
    with transaction(engine) as conn:
        row_id = int(conn.execute(insert(things).values(state="new")).inserted_primary_key[0])  # type: ignore[index]
        job_id = owned.attach(conn, things, row_id, NewJob(jobs.encode_handler("t.work", {"id": row_id})))
        if fail:
            raise RuntimeError("the enqueuer died before commit")
    return row_id, job_id


def _count(engine: Engine, table: Table) -> int:
    with transaction(engine) as conn:
        return len(conn.execute(select(table.c.id)).all())


def test_a_row_and_its_job_commit_together_or_not_at_all(engine: Engine, table: Table) -> None:
    with pytest.raises(RuntimeError):
        _new(engine, fail=True)
    assert _count(engine, table) == 0 and _count(engine, delayed_jobs) == 0
    row_id, job_id = _new(engine)
    with transaction(engine) as conn:
        assert conn.execute(select(things.c.job_id).where(things.c.id == row_id)).scalar() == job_id
        assert conn.execute(select(delayed_jobs.c.id)).scalars().all() == [job_id]


def test_only_the_owner_writes_and_a_second_job_is_a_duplicate(engine: Engine, table: Table) -> None:
    row_id, job_id = _new(engine)
    with transaction(engine) as conn:
        assert owned.owner(conn, things, row_id, job_id) is None  # its own row
        assert owned.owner(conn, things, row_id, job_id + 1000) == job_id  # another live job owns it
    assert not owned.update_owned(engine, things, row_id, job_id + 1000, state="stolen")
    with pytest.raises(owned.RowLost, match=f"no longer owned by job {job_id + 1000}"):
        owned.require_owned(engine, things, row_id, job_id + 1000, state="stolen")
    owned.require_owned(engine, things, row_id, job_id, state="running")
    with transaction(engine) as conn:
        assert conn.execute(select(things.c.state)).scalar() == "running"
    # The owner's job row is gone (finished, deleted by hand): another job may take the row over.
    execute(engine, "DELETE FROM delayed_jobs WHERE id = :id", id=job_id)
    with transaction(engine) as conn:
        assert owned.owner(conn, things, row_id, job_id + 1000) is None


def test_follow_runs_ends_duplicates_quietly_and_waits_without_an_attempt(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("dqueue.test_owned")
    kw = {"recheck": 30.0, "log": log, "event": "thing", "ids": "row=1 job=2"}
    assert owned.follow(owned.Verdict.RUN, "", **kw) is True  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="dqueue.test_owned"):
        assert owned.follow(owned.Verdict.DUPLICATE, "row 1 belongs to job 3", **kw) is False  # type: ignore[arg-type]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "thing.duplicate row=1 job=2 row 1 belongs to job 3")]
    with pytest.raises(Reschedule) as waited:
        owned.follow(owned.Verdict.WAIT, "waiting for row 0", **kw)  # type: ignore[arg-type]
    assert waited.value.delay == 30.0 and str(waited.value) == "waiting for row 0"
    assert owned.Verdict("duplicate") is owned.Verdict.DUPLICATE and owned.Verdict.RUN == "run"
