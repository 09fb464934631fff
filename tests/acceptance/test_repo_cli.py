"""``dqueue repo submit|list|show``, the console's submit_to_repository and the repository's part
of ``long_jobs status|restart``, run as the real CLI in a subprocess with two hostnames sharing
one database."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from tests.helpers import cli_env, run_cli, scalar
from tests.zenodo_support import add_resource, file_entry, manifest_for


def _host(tmp_path: Path, name: str) -> dict[str, str]:
    return {"DQUEUE_HOSTNAME": name, "DQUEUE_FLAG_DIR": str(tmp_path / name / "flags")}


def _repo(db_url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["repo", *args], db_url, **env)


def _long_jobs(db_url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dqueue.cli.long_jobs import main; main()", *args],
                          env=cli_env(db_url, **env), capture_output=True, text=True, timeout=60)


def _version(engine: Engine, tmp_path: Path, n: int) -> int:
    return add_resource(engine, manifest_for(f"10.5061/dryad.cli{n}", [file_entry(tmp_path / f"v{n}", "a.csv", b"a")]))


def test_submit_list_show_from_the_shell(engine: Engine, db_url: str, tmp_path: Path) -> None:
    web1 = _host(tmp_path, "web-1")
    rid = _version(engine, tmp_path, 1)
    first = _repo(db_url, web1, "submit", str(rid), "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["outcome"] == "enqueued" and result["hostname"] == "web-1" and result["job_id"]
    assert "merritt_base_url" in first.stderr and "will fail until" in first.stderr  # nothing configured here
    again = _repo(db_url, web1, "submit", str(rid))
    assert again.returncode == 0 and "still pending" in again.stdout and "nothing enqueued" in again.stdout
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 1

    missing = _repo(db_url, web1, "submit", "98765")
    assert missing.returncode == 1 and "no resource 98765" in missing.stderr and "Traceback" not in missing.stderr

    listed = json.loads(_repo(db_url, web1, "list", "--state", "enqueued", "--host", "web-1", "--json").stdout)
    assert [(r["resource_id"], r["state"], r["hostname"]) for r in listed] == [(rid, "enqueued", "web-1")]
    assert json.loads(_repo(db_url, web1, "list", "--host", "web-2", "--json").stdout) == []
    text = _repo(db_url, web1, "list").stdout
    assert f"resource {rid}" in text and "enqueued" in text and "host=web-1" in text

    shown = json.loads(_repo(db_url, web1, "show", str(rid), "--json").stdout)
    assert shown["state"] == "enqueued" and [s["state"] for s in shown["states"]] == ["enqueued"]
    assert shown["logs"] == []
    assert "states (1):" in _repo(db_url, web1, "show", str(rid)).stdout
    assert _repo(db_url, web1, "show", "98765").returncode == 1
    bad = _repo(db_url, web1, "list", "--state", "bogus")
    assert bad.returncode == 2 and "bogus" in bad.stderr


def test_force_is_visible_in_the_history(engine: Engine, db_url: str, tmp_path: Path) -> None:
    web1 = _host(tmp_path, "web-1")
    rid = _version(engine, tmp_path, 1)
    with engine.begin() as conn:
        from dqueue.repository import store as repo
        from dqueue.repository.states import RepoState
        repo.append_state(conn, rid, RepoState.PROCESSING, "web-1")
        repo.append_state(conn, rid, RepoState.COMPLETED, "web-1")
    dropped = _repo(db_url, web1, "submit", str(rid))
    assert dropped.returncode == 0 and "duplicate dropped" in dropped.stdout
    assert "repo.duplicate_dropped" in dropped.stderr  # the log line, on stderr
    forced = json.loads(_repo(db_url, web1, "submit", str(rid), "--force", "--json").stdout)
    assert forced["outcome"] == "enqueued" and forced["forced"] is True
    shown = json.loads(_repo(db_url, web1, "show", str(rid), "--json").stdout)
    assert [s["state"] for s in shown["states"]] == ["processing", "completed", "enqueued"]
    assert "forced re-send requested by" in shown["logs"][0]["archive_submission_request"]


def test_console_submit_to_repository(engine: Engine, db_url: str, tmp_path: Path) -> None:
    rid = _version(engine, tmp_path, 1)
    out = run_cli(["console", "-c", f"r = Resource.get({rid}).submit_to_repository(); "
                   f"print('STATES', [str(s.state) for s in Resource.get({rid}).repository_states()])"],
                  db_url, **_host(tmp_path, "web-3"))
    assert out.returncode == 0, out.stderr
    assert f"enqueued resource {rid} on web-3" in out.stdout and "STATES ['enqueued']" in out.stdout


def test_hold_status_and_per_host_restart(engine: Engine, db_url: str, tmp_path: Path) -> None:
    web1, web2 = _host(tmp_path, "web-1"), _host(tmp_path, "web-2")
    mine, theirs = _version(engine, tmp_path, 1), _version(engine, tmp_path, 2)
    for env in (web1, web2):
        assert _long_jobs(db_url, env, "drain").returncode == 0
    assert "held on web-1" in _repo(db_url, web1, "submit", str(mine)).stdout
    assert "held on web-2" in _repo(db_url, web2, "submit", str(theirs)).stdout
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0

    status = json.loads(_long_jobs(db_url, web1, "status", "--json").stdout)["repository"]
    assert status["submissions"]["held"] == 2 and status["oldest_held_since"]
    assert [(h["host"], h["held"]) for h in status["hosts"]] == [("web-1", 1), ("web-2", 1)]
    text = _long_jobs(db_url, web1, "status").stdout
    assert "repository submissions: 2 held, 0 enqueued, 0 processing" in text
    assert "repository hosts: host=web-2 held=1" in text

    out = _long_jobs(db_url, web1, "restart")
    assert out.returncode == 0, out.stderr
    assert f"re-enqueued 1 held submissions of web-1 on web-1, oldest first: resources {mine}" in out.stdout
    assert not (tmp_path / "web-1" / "flags" / "hold-submissions.txt").exists()
    assert "no held submissions of web-1" in _long_jobs(db_url, web1, "restart").stdout  # twice: nothing twice
    taken = _long_jobs(db_url, web1, "restart", "--from-host", "web-2")
    assert "re-enqueued 1 held submissions of web-2 on web-1" in taken.stdout
    assert "no held submissions of any host" in _long_jobs(db_url, web1, "restart", "--all-hosts").stdout
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 2
    shown = json.loads(_repo(db_url, web1, "show", str(theirs), "--json").stdout)
    assert [(s["state"], s["hostname"]) for s in shown["states"]] == [("rejected_shutting_down", "web-2"),
                                                                      ("enqueued", "web-1")]
    both = _long_jobs(db_url, web1, "restart", "--all-hosts", "--from-host", "web-2")
    assert both.returncode == 2 and "exclude each other" in both.stderr
