"""Helpers for the repository deposit tests: the fake Merritt's settings, dataset versions, and an
in-process runner for due jobs (the worker's rules for success, Reschedule and failure)."""
from __future__ import annotations

import datetime as dt
import hashlib
import traceback
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine

from dqueue import config, jobs
from dqueue.errors import PermanentError, Reschedule
from dqueue.repository import store
from dqueue.repository.states import RepoState
from dqueue.stash import manifest, resources
from dqueue.store.queue import transaction
from dqueue.testing.merritt import FakeMerritt
from dqueue.testing.static import StaticServer
from tests.helpers import execute, rows, wait_until

USER, PASSWORD = "dryad-merritt", "s3cr3t-merritt-password"
DOI = "10.5061/dryad.repo123"


def menv(fake: FakeMerritt, web: StaticServer | None, staging: Path, flag_dir: Path, **extra: str) -> dict[str, str]:
    """Environment (DQUEUE_*) for a worker or CLI that deposits in ``fake``."""
    env = {"DQUEUE_MERRITT_BASE_URL": fake.url, "DQUEUE_MERRITT_COLLECTION": "cdl_dryad",
           "DQUEUE_MERRITT_PROFILE": "cdl_dryad_content", "DQUEUE_MERRITT_USER": USER,
           "DQUEUE_MERRITT_PASSWORD": PASSWORD, "DQUEUE_MERRITT_SUBMITTER": "dryad/Dryad",
           "DQUEUE_MERRITT_PUBLIC_BASE_URL": web.url_for("") if web else "",
           "DQUEUE_MERRITT_STAGING_DIR": str(staging), "DQUEUE_MERRITT_CHECK_INTERVAL": "0.2",
           "DQUEUE_MERRITT_CONNECT_TIMEOUT": "2", "DQUEUE_MERRITT_READ_TIMEOUT": "3",
           "DQUEUE_MERRITT_ATTEMPTS": "3", "DQUEUE_MERRITT_BACKOFF": "0.01", "DQUEUE_FLAG_DIR": str(flag_dir)}
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def settings_for(db_url: str, env: dict[str, str]) -> config.Settings:
    return config.load(environ=env, database_url=db_url)


def add_version(engine: Engine, folder: Path, files: dict[str, bytes | None], version: int | None = None,
                doi: str = DOI) -> int:
    """A version whose data files have local sources; a None content marks the file deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, content in files.items():
        if content is None:
            entries.append({"name": name, "size": 0, "kind": "data", "state": "deleted"})
            continue
        path = folder / name
        path.write_bytes(content)
        entries.append({"name": name, "size": len(content), "kind": "data", "state": "created",
                        "source": str(path), "digest": hashlib.md5(content).hexdigest(), "digest_type": "md5"})
    data: dict[str, Any] = {"identifier": doi, "title": "Marsh birds", "creators": [{"name": "Doe, Jane"}],
                            "files": entries}
    if version is not None:
        data["version"] = version
    return resources.add(engine, manifest.parse(data))


def states(engine: Engine, resource_id: int) -> list[str]:
    with transaction(engine) as conn:
        return [r.state.value if r.state else "" for r in store.history(conn, resource_id)]


def logs(engine: Engine, resource_id: int) -> list[store.LogRow]:
    with transaction(engine) as conn:
        return store.logs(conn, resource_id)


def download_uri(engine: Engine, resource_id: int) -> str | None:
    with transaction(engine) as conn:
        return store.download_uri(conn, resource_id)


def latest(engine: Engine, resource_id: int) -> RepoState | None:
    with transaction(engine) as conn:
        row = store.latest(conn, resource_id)
    return row.state if row else None


def run_due(engine: Engine, settings: config.Settings) -> int:
    """Run every due job once, in this process, as a worker would; returns how many ran."""
    due = rows(engine, "SELECT id, handler, attempts FROM delayed_jobs WHERE failed_at IS NULL AND run_at <= :now "
                       "ORDER BY run_at, id", now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    for job in due:
        jobdef, args = jobs.resolve(job.handler)
        context = jobs.JobContext(int(job.id), int(job.attempts) + 1, 5, settings, engine)
        try:
            with jobs.running(context):
                jobdef.func(**args)
        except Reschedule as exc:
            execute(engine, "UPDATE delayed_jobs SET run_at = :at WHERE id = :id", id=job.id,
                    at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=exc.delay))
        except PermanentError as exc:
            execute(engine, "UPDATE delayed_jobs SET failed_at = run_at, last_error = :e WHERE id = :id",
                    id=job.id, e=str(exc))
        except Exception:  # noqa: BLE001 - recorded as the worker would
            execute(engine, "UPDATE delayed_jobs SET failed_at = run_at, last_error = :e WHERE id = :id",
                    id=job.id, e=traceback.format_exc())
        else:
            execute(engine, "DELETE FROM delayed_jobs WHERE id = :id", id=job.id)
    return len(due)


def run_until(engine: Engine, settings: config.Settings, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run due jobs until ``done()`` (a check is scheduled ahead: polled until its run_at comes)."""
    wait_until(lambda: run_due(engine, settings) >= 0 and done(), timeout=timeout)
