"""Sample batch kinds for the batch tests, loaded by workers with ``--import tests.batch_support``.

``test.walk`` (singleton) walks ``items`` items, sleeping ``sleep`` seconds on each, reporting
progress and checking ``stop_requested`` between items; ``fail=1`` returns an error,
``raise=1`` raises with ``SECRET`` in the message (set it as
zenodo_token to see it masked).  ``test.free`` is the same, not a singleton.
The environment variable DQUEUE_TEST_WALK_MARK names a file touched at each item, so a test can
see a worker mid-execution.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine

from dqueue import jobs
from dqueue.batch import launch
from dqueue.batch.kinds import Result, StepContext, batch_job
from dqueue.batch.records import Execution
from dqueue.config import Settings
from dqueue.store import queue
from dqueue.store.claim import Claimer
from dqueue.store.queue import ClaimedJob
from tests.helpers import wait_until

SECRET = "s3cr3t-batch-token-4821"
WALK, FREE = "test.walk", "test.free"
LABEL = "Test Walk Process"


def _walk(ctx: StepContext) -> Result:
    p = ctx.params
    items, sleep = int(p.get("items", 5)), float(p.get("sleep", 0.0))
    mark = os.environ.get("DQUEUE_TEST_WALK_MARK")
    done = 0
    for _ in range(items):
        if ctx.stop_requested():
            break
        if mark:
            Path(mark).write_text(str(done))
        time.sleep(sleep)
        done += 1
        ctx.progress(done, items, write_count=done)
    if p.get("interrupt"):  # as the worker's monitor interrupts a job: "shutdown" or "timeout"
        from dqueue.worker.executor import JobInterrupted
        raise JobInterrupted(str(p["interrupt"]))
    if str(p.get("raise", "0")) == "1":
        pad = "x" * int(p.get("pad", 0))  # a long message: exit_message keeps it whole
        raise RuntimeError(f"walk broke at item {done}: the server refused {SECRET}{pad}")
    summary = f"Total items: {items}, walked: {done}"
    errors: list[str] = [f"item {done} refused: bad item"] if str(p.get("fail", "0")) == "1" else []
    context: dict[str, Any] = {"response": {"walked": done}}
    return Result(summary, errors, context)


batch_job(WALK, step="testWalkStep", label=LABEL, singleton=True)(_walk)


@batch_job(FREE, step="testFreeStep", label="Test Free Process")
def _free(ctx: StepContext) -> Result:
    return _walk(ctx)


# -- running an execution in-process, as a worker would ------------------------------------------

def claim(engine: Engine) -> ClaimedJob:
    """Claim the one due job (the execution's batch.run), as a worker does."""
    (job,) = Claimer(engine, "host:test pid:1 proc:1").claim(1)
    return job


def run_claimed(engine: Engine, settings: Settings, job: ClaimedJob) -> None:
    """Run a claimed batch.run job's execution, then finish the job, as the worker would."""
    from dqueue.batch.runner import Run
    _, args = jobs.decode_handler(job.handler)
    Run(engine, settings, int(args["execution_id"]), job.id, job.attempts).go()
    queue.finish(engine, job)


def run_next(engine: Engine, settings: Settings) -> None:
    run_claimed(engine, settings, claim(engine))


@contextmanager
def running_thread(engine: Engine, settings: Settings, items: int = 400, sleep: float = 0.02,
                   name: str = WALK) -> Iterator[tuple[Execution, ClaimedJob, threading.Thread]]:
    """An execution of ``name`` claimed and running on a thread (STARTED when this yields)."""
    execution = launch.start(engine, settings, name, {"items": items, "sleep": sleep})
    job = claim(engine)
    failures: list[BaseException] = []

    def target() -> None:
        try:
            run_claimed(engine, settings, job)
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            failures.append(exc)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_until(lambda: status(engine, execution.job_execution_id) == "STARTED", 10, message="STARTED")
    try:
        yield execution, job, thread
    finally:
        thread.join(30)
        assert not thread.is_alive(), "the batch thread did not stop"
        assert not failures, f"the batch thread raised {failures[0]!r}"


def status(engine: Engine, execution_id: int) -> str | None:
    found = launch.get(engine, execution_id)
    return None if found is None else (found.status.value if found.status else None)


# -- the guard race: ``python -c "from tests.batch_support import race; race()" URL AT N`` -------

def race() -> None:
    """Start ``test.walk`` from N threads of this process at wall-clock time AT; print JSON counts."""
    import json
    import sys

    from dqueue import config
    from dqueue.store import make_engine

    url, at, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    engine = make_engine(url)
    settings = config.load(environ={}, database_url=url)
    outcomes: list[str] = []
    barrier = threading.Barrier(n)

    def one() -> None:
        with engine.connect():
            pass  # a pooled connection ready before the start line
        barrier.wait()
        time.sleep(max(0.0, at - time.time()))
        try:
            launch.start(engine, settings, WALK)
            outcomes.append("won")
        except launch.AlreadyRunning:
            outcomes.append("refused")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcomes.append(f"error: {type(exc).__name__}: {exc}")
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(outcomes))


def walked(engine: Engine, execution_id: int) -> int:
    """Items done as the execution's step row says (written at most once a second)."""
    found = launch.get(engine, execution_id)
    if found is None or not found.steps:
        return 0
    return int(found.steps[-1].counts.get("read_count") or 0)
