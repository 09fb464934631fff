"""The defer marker and long_jobs drain|status|restart with Zenodo copies, on SQLite and MariaDB."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo import jobs as zjobs
from tests.helpers import execute, run_cli, scalar
from tests.workers import burst
from tests.zenodo_support import add_resource, copies, file_entry, manifest_for, zenv

DOI = "10.5061/dryad.drain"


def _long_jobs(db_url: str, env: dict[str, str], *args: str) -> str:
    import subprocess
    import sys

    from tests.helpers import cli_env
    result = subprocess.run([sys.executable, "-c", "from dqueue.cli.long_jobs import main; main()", *args],
                            env=cli_env(db_url, **env), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _versions(engine: Engine, tmp_path: Path, count: int) -> list[int]:
    files, ids = [], []
    for v in range(1, count + 1):
        files = [{**f, "state": "copied"} for f in files]
        files.append(file_entry(tmp_path / f"v{v}", f"part{v}.csv", f"{v}\n".encode() * 100))
        ids.append(add_resource(engine, manifest_for(DOI, files)))
    return ids


def test_drain_defers_copies_and_restart_sends_them_in_order_once(engine: Engine, db_url: str,
                                                                  fake: FakeZenodo, tmp_path: Path) -> None:
    env = zenv(fake, tmp_path / "flags")
    out = _long_jobs(db_url, env, "drain")
    assert (tmp_path / "flags" / "defer_jobs.txt").exists() and (tmp_path / "flags" / "hold-submissions.txt").exists()
    assert "created" in out
    ids = _versions(engine, tmp_path, 3)
    for rid in reversed(ids):
        zjobs.send(engine, rid)
    assert burst(db_url, **env).returncode == 0
    assert [c.state for c in copies(engine)] == ["deferred"] * 3
    assert fake.requests == []  # a deferred copy makes no Zenodo call
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0  # and its job is done

    status = json.loads(_long_jobs(db_url, env, "status", "--json"))
    assert status["markers"] == {"defer_jobs.txt": True, "hold-submissions.txt": True}
    assert status["zenodo"]["copies"]["deferred"] == 3

    out = _long_jobs(db_url, env, "restart")
    assert "re-enqueued 3 deferred copies" in out
    assert not (tmp_path / "flags" / "defer_jobs.txt").exists()
    again = _long_jobs(db_url, env, "restart")
    assert "no deferred copies" in again
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 3  # nothing enqueued twice
    by_version = sorted(copies(engine), key=lambda c: c.version)
    assert [c.job_id for c in by_version] == sorted(c.job_id for c in by_version)  # enqueued in version order

    assert burst(db_url, **env).returncode == 0
    assert [c.state for c in copies(engine)] == ["finished"] * 3


def test_a_row_deferred_by_hand_is_resent_by_restart(engine: Engine, db_url: str, fake: FakeZenodo,
                                                     tmp_path: Path) -> None:
    env = zenv(fake, tmp_path / "flags", DQUEUE_ZENODO_TOKEN="not-the-token-at-all")
    (rid,) = _versions(engine, tmp_path, 1)
    zjobs.send(engine, rid)
    execute(engine, "UPDATE stash_engine_zenodo_copies SET retries = 3")  # no automatic retry: error stays
    assert burst(db_url, **env).returncode == 0
    assert [(c.state, c.retries) for c in copies(engine)] == [("error", 4)]

    execute(engine, "UPDATE stash_engine_zenodo_copies SET state = 'deferred', retries = 0")  # the runbook
    good = zenv(fake, tmp_path / "flags")
    assert "re-enqueued 1 deferred" in _long_jobs(db_url, good, "restart")
    assert burst(db_url, **good).returncode == 0
    assert [(c.state, c.retries) for c in copies(engine)] == [("finished", 1)]


def test_status_shows_what_is_running(engine: Engine, db_url: str, tmp_path: Path, fake: FakeZenodo) -> None:
    (rid,) = _versions(engine, tmp_path, 1)
    zjobs.send(engine, rid)
    execute(engine, "UPDATE stash_engine_zenodo_copies SET state = 'replicating'")
    out = _long_jobs(db_url, zenv(fake, tmp_path / "flags"), "status")
    assert "defer_jobs.txt: not set" in out
    assert "zenodo copies: 0 enqueued, 1 replicating" in out
    assert f"resource_id={rid}" in out


def test_cli_send_and_console_enqueue_one_copy(engine: Engine, db_url: str, tmp_path: Path) -> None:
    (rid,) = _versions(engine, tmp_path, 1)
    result = run_cli(["zenodo", "send", str(rid), "--json"], db_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["created"] is True
    result = run_cli(["console", "-c", f"c = Resource.get({rid}).send_to_zenodo(); print('state', c.state)"], db_url)
    assert result.returncode == 0, result.stderr
    assert "already there" in result.stdout and "state enqueued" in result.stdout
    result = run_cli(["zenodo", "send", str(rid), "--type", "software"], db_url)
    assert result.returncode != 0 and "has no software files" in result.stderr
    assert scalar(engine, "SELECT COUNT(*) FROM stash_engine_zenodo_copies") == 1
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 1
