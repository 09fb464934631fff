"""``dqueue demo``: set up the SQLite default, enqueue sample jobs, let two workers run them."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click
from sqlalchemy import func, select

from .. import client, samples
from ..stash import manifest, resources
from ..store import migrate
from ..store.schema import delayed_jobs
from ..worker import run_pool
from ..zenodo import jobs as zenodo_jobs
from ..zenodo import store as zenodo_copies
from .common import AppContext
from .demo_itemsync import DemoGitLab, show_execution, start_sync
from .demo_repository import DemoMerritt, show_history, submit_version
from .main import cli


@cli.command()
@click.option("--files", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Sample files to checksum.")
@click.option("-n", "--number", "count", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Worker processes.")
@click.option("--zenodo/--no-zenodo", default=True, show_default=True,
              help="Also copy three versions of a sample dataset to a fake Zenodo on 127.0.0.1 "
              "(dqueue.testing.zenodo, shipped with dqueue).")
@click.option("--merritt/--no-merritt", default=True, show_default=True,
              help="Also deposit a dataset version in a fake Merritt on 127.0.0.1 (dqueue.testing.merritt), "
              "with its files served from var/demo/merritt-staging.")
@click.option("--itemsync/--no-itemsync", default=True, show_default=True,
              help="Also run the full item sync (itemSynchronizationJob) against a fake GitLab item bank on "
              "127.0.0.1 (dqueue.testing.gitlab): webhooks added, heads ingested into 'items'.")
@click.pass_obj
def demo(app: AppContext, files: int, count: int, zenodo: bool, merritt: bool, itemsync: bool) -> None:
    """Show dqueue working: create the schema, enqueue jobs, run workers until the queue is empty.

    Writes sample files under var/demo/, enqueues one sample.checksum job per file plus a job
    that fails once and is retried with backoff, and sends three versions of a dataset made of
    those files to a fake Zenodo, newest first, and submits one version of another dataset to a
    fake Merritt (deposit, then completion checks), and starts the full item sync of a fake GitLab
    item bank; then runs N workers in burst mode.
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
    settings = app.settings.replace(backoff_base=0.2)
    fake = _start_fake_zenodo() if zenodo else None
    copies: list[int] = []
    if fake is not None:
        settings = settings.replace(zenodo_url=fake[1], zenodo_token=FAKE_TOKEN, zenodo_request_interval=0.02,
                                    zenodo_publish_wait=0.1, zenodo_recheck=0.5)
        copies = _send_dataset(app, folder, files)
        ids += copies
    repository = None
    deposited: int | None = None
    if merritt:
        try:
            repository = DemoMerritt(folder)
        except click.ClickException:
            _stop(fake, None)
            raise
        settings = repository.settings(settings)
        deposited, deposit_job = submit_version(app, settings, folder / "sample-0.bin")
        ids.append(deposit_job)
    bank = None
    execution: int | None = None
    if itemsync:
        try:
            bank = DemoGitLab()
        except click.ClickException:
            _stop(fake, repository)
            raise
        settings = bank.settings(settings)
        sync = start_sync(app, settings)
        execution = sync.job_execution_id
        ids.append(int(sync.delayed_job_id or 0))
    click.echo(f"enqueued {len(ids)} jobs; starting {count} workers in burst mode")
    app.engine.dispose()
    started = time.monotonic()
    try:
        for _ in range(10):  # a retried job is due again after its short backoff
            run_pool(settings, count, burst=True)
            if _remaining(app) == (0, 0) or time.monotonic() - started > 30:
                break
            time.sleep(0.3)
    finally:
        _stop(fake, repository, bank)
    waiting, failed = _remaining(app)
    click.echo(f"done in {time.monotonic() - started:.1f}s: {len(ids) - waiting - failed} jobs "
               f"completed, {waiting} waiting, {failed} failed")
    if ledger.exists():
        click.echo(f"{ledger}: {ledger.read_text().strip()}")
    if copies:
        _show_copies(app)
    if deposited is not None:
        show_history(app, deposited)
    if execution is not None:
        show_execution(app, execution)
    click.echo("next, from the same directory (.venv/bin on your PATH):\n"
               "  dqueue jobs stats\n"
               "  dqueue --import dqueue.samples enqueue sample.sleep --args '{\"seconds\": 2}'\n"
               "  dqueue --import dqueue.samples worker -n 2        (Ctrl-C stops it gracefully)")
    assert samples  # the sample jobs are registered by importing the module


FAKE_TOKEN = "demo-token"


def _stop(fake: tuple[subprocess.Popen[str], str] | None, repository: DemoMerritt | None,
          bank: DemoGitLab | None = None) -> None:
    if fake is not None:
        fake[0].terminate()
        fake[0].wait(10)
    if repository is not None:
        repository.stop()
    if bank is not None:
        bank.stop()


def _start_fake_zenodo() -> tuple[subprocess.Popen[str], str]:
    """The fake Zenodo that ships in the package, in a process of its own (the workers fork, and
    must not inherit its listening socket and threads)."""
    proc = subprocess.Popen([sys.executable, "-m", "dqueue.testing.zenodo", "--port", "0", "--token", FAKE_TOKEN],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.terminate()
        proc.wait(10)
        raise click.ClickException("the fake Zenodo (python -m dqueue.testing.zenodo) did not start; "
                                   "--no-zenodo runs the demo without it")
    click.echo(f"fake Zenodo at {url}")
    return proc, url


def _send_dataset(app: AppContext, folder: Path, files: int) -> list[int]:
    """Three versions of one dataset, each adding a sample file; sent newest first."""
    identifier = f"10.5072/dqueue.demo.{int(time.time())}"
    entries: list[dict[str, object]] = []
    resource_ids = []
    for version in range(1, 4):
        entries = [{**e, "state": "copied"} for e in entries]
        path = folder / f"sample-{(version - 1) % files}.bin"
        entries.append({"name": f"part{version}.bin", "size": path.stat().st_size, "source": str(path.resolve())})
        resource_ids.append(resources.add(app.engine, manifest.parse(
            {"identifier": identifier, "title": "dqueue demo dataset", "creators": [{"name": "Demo, Dee"}],
             "files": entries})))
    job_ids = []
    for rid in reversed(resource_ids):
        sent = zenodo_jobs.send(app.engine, rid)
        job_ids.append(int(sent.copy.job_id or 0))
    click.echo(f"dataset {identifier}: versions 1-3 registered (resources {resource_ids}) and sent to "
               "Zenodo newest first; they will be copied oldest first")
    return job_ids


def _show_copies(app: AppContext) -> None:
    click.echo("stash_engine_zenodo_copies:")
    for c in zenodo_copies.find(app.engine)[-3:]:
        click.echo(f"  copy {c.id}: version {c.version} {c.state}, retries {c.retries}, "
                   f"deposition {c.deposition_id}" + (f", note: {c.note}" if c.note else ""))
    click.echo("  (each copy's log of requests: dqueue zenodo show COPY_ID)")
    app.engine.dispose()


def _remaining(app: AppContext) -> tuple[int, int]:
    with app.engine.connect() as conn:
        waiting = conn.execute(select(func.count()).where(delayed_jobs.c.failed_at.is_(None))).scalar_one()
        failed = conn.execute(select(func.count()).where(delayed_jobs.c.failed_at.is_not(None))).scalar_one()
    app.engine.dispose()
    return int(waiting), int(failed)
