"""``dqueue resource add|show``: a manifest in, a resource out; a bad manifest writes nothing."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.helpers import run_cli, scalar
from tests.zenodo_support import file_entry, manifest_for, write_manifest


def test_add_then_show(engine: Engine, db_url: str, tmp_path: Path) -> None:
    data = manifest_for("10.5061/dryad.cli", [file_entry(tmp_path, "a.csv", b"123"),
                                               file_entry(tmp_path, "tool.py", b"pass", kind="software")])
    path = write_manifest(tmp_path, data)
    first = run_cli(["resource", "add", str(path)], db_url)
    assert first.returncode == 0, first.stderr
    second = run_cli(["resource", "add", str(path), "--json"], db_url)
    assert json.loads(second.stdout)["version"] == 2
    shown = run_cli(["resource", "show", first.stdout.strip()], db_url)
    assert shown.returncode == 0, shown.stderr
    assert "10.5061/dryad.cli version 1" in shown.stdout and "tool.py" in shown.stdout
    as_json = json.loads(run_cli(["resource", "show", first.stdout.strip(), "--json"], db_url).stdout)
    assert [f["name"] for f in as_json["files"]] == ["a.csv", "tool.py"]
    missing = run_cli(["resource", "show", "999"], db_url)
    assert missing.returncode == 1 and "no resource 999" in missing.stderr


def test_a_bad_manifest_names_the_field_and_writes_nothing(engine: Engine, db_url: str, tmp_path: Path) -> None:
    data = manifest_for("10.5061/dryad.bad", [file_entry(tmp_path, "a.csv", b"1")])
    data["files"][0]["size"] = "big"
    result = run_cli(["resource", "add", str(write_manifest(tmp_path, data))], db_url)
    assert result.returncode == 1
    assert "files[0].size: required, a whole number of bytes" in result.stderr
    data = manifest_for("10.5061/dryad.bad", [file_entry(tmp_path, "a.csv", b"1")], version=1)
    assert run_cli(["resource", "add", str(write_manifest(tmp_path, data))], db_url).returncode == 0
    again = run_cli(["resource", "add", str(write_manifest(tmp_path, data))], db_url)
    assert again.returncode == 1 and "version:" in again.stderr and "already has version 1" in again.stderr
    for table in ("stash_engine_resources", "stash_engine_identifiers"):
        assert scalar(engine, f"SELECT COUNT(*) FROM {table}") == 1
