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
import time
from pathlib import Path
from typing import Any

from dqueue.batch.kinds import Result, StepContext, batch_job

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
    if str(p.get("raise", "0")) == "1":
        raise RuntimeError(f"walk broke at item {done}: the server refused {SECRET}")
    summary = f"Total items: {items}, walked: {done}"
    errors: list[str] = [f"item {done} refused: bad item"] if str(p.get("fail", "0")) == "1" else []
    context: dict[str, Any] = {"response": {"walked": done}}
    return Result(summary, errors, context)


batch_job(WALK, step="testWalkStep", label=LABEL, singleton=True)(_walk)


@batch_job(FREE, step="testFreeStep", label="Test Free Process")
def _free(ctx: StepContext) -> Result:
    return _walk(ctx)
