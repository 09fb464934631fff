"""``dqueue demo``: set up the SQLite default, enqueue sample jobs, let two workers run them."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click
from sqlalchemy import func, select

from .. import client, samples
from ..store import migrate
from ..store.schema import delayed_jobs
from ..worker import run_pool
from .common import AppContext
from .main import cli


@cli.command()
@click.option("--files", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Sample files to checksum.")
@click.option("-n", "--number", "count", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Worker processes.")
@click.pass_obj
def demo(app: AppContext, files: int, count: int) -> None:
    """Show dqueue working: create the schema, enqueue jobs, run workers until the queue is empty.

    Writes sample files under var/demo/, enqueues one sample.checksum job per file plus a job
    that fails once and is retried with backoff, then runs N workers in burst mode.
    """
    before, after = migrate.upgrade(app.engine)
    url = app.engine.url.render_as_string(hide_password=True)
    click.echo(f"database: {url} (schema {before or 'created'} -> {after})")
    folder = Path("var/demo")
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for i in range(files):
        path = folder / f"sample-{i}.bin"
        path.write_bytes(os.urandom(256 * 1024 * (i + 1)))
        specs.append(client.JobSpec("sample.checksum", {"path": str(path)}))
    ledger = folder / "retried.txt"
    ledger.unlink(missing_ok=True)
    for stale in folder.glob("retried.txt.*.tries"):
        stale.unlink()
    specs.append(client.JobSpec("sample.append", {"path": str(ledger), "line": "made it on the second try",
                                                  "fail_times": 1}))
    ids = client.Client(app.settings, engine=app.engine).enqueue_many(specs)
    click.echo(f"enqueued {len(ids)} jobs (ids {ids[0]}..{ids[-1]}); starting {count} workers in burst mode")
    app.engine.dispose()
    started = time.monotonic()
    settings = app.settings.replace(backoff_base=0.2)
    for _ in range(5):  # a retried job is due again after its short backoff
        run_pool(settings, count, burst=True)
        if _remaining(app) == (0, 0) or time.monotonic() - started > 20:
            break
        time.sleep(0.3)
    waiting, failed = _remaining(app)
    click.echo(f"done in {time.monotonic() - started:.1f}s: {len(ids) - waiting - failed} jobs "
               f"completed, {waiting} waiting, {failed} failed")
    if ledger.exists():
        click.echo(f"{ledger}: {ledger.read_text().strip()}")
    click.echo("next, from the same directory (.venv/bin on your PATH):\n"
               "  dqueue jobs stats\n"
               "  dqueue --import dqueue.samples enqueue sample.sleep --args '{\"seconds\": 2}'\n"
               "  dqueue --import dqueue.samples worker -n 2        (Ctrl-C stops it gracefully)")
    assert samples  # the sample jobs are registered by importing the module


def _remaining(app: AppContext) -> tuple[int, int]:
    with app.engine.connect() as conn:
        waiting = conn.execute(select(func.count()).where(delayed_jobs.c.failed_at.is_(None))).scalar_one()
        failed = conn.execute(select(func.count()).where(delayed_jobs.c.failed_at.is_not(None))).scalar_one()
    app.engine.dispose()
    return int(waiting), int(failed)
