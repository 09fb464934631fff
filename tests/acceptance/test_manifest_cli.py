"""``dqueue resource add`` and ``dqueue zenodo send`` with hostile input: one line naming the field
or the reason, exit 1, nothing written, never a traceback (issue 7, points 6 and 10)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.helpers import run_cli, scalar
from tests.zenodo_support import add_resource, file_entry, manifest_for, write_manifest

TABLES = ("stash_engine_identifiers", "stash_engine_resources", "stash_engine_generic_files")


def _good(tmp_path: Path) -> dict[str, Any]:
    return manifest_for("10.5061/dryad.hostile", [file_entry(tmp_path, "a.csv", b"1,2\n")])


def _refused(db_url: str, path: Path, field: str, engine: Engine) -> str:
    result = run_cli(["resource", "add", str(path)], db_url, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith(f"Error: {path}: {field}:"), message[:500]
    assert len(message.splitlines()) == 1 and len(message) < 500
    for table in TABLES:
        assert scalar(engine, f"SELECT COUNT(*) FROM {table}") == 0
    return message


@pytest.mark.parametrize("field, change", [
    ("title", {"title": "T" * (10 * 1024 * 1024)}),
    ("description", {"description": "D" * (17 * 1024 * 1024)}),
    ("files[0].name", {"name": "../../etc/passwd"}),
    ("files[0].name", {"name": "a\u0000b"}),
    ("files[0].source", {"source": "file://fileserver.example/share/a.csv"}),
])
def test_a_bad_or_over_long_field_is_named(engine: Engine, db_url: str, tmp_path: Path, field: str,
                                           change: dict[str, Any]) -> None:
    data = _good(tmp_path)
    if field.startswith("files"):
        data["files"][0].update(change)
    else:
        data.update(change)
    _refused(db_url, write_manifest(tmp_path, data), field, engine)


def test_the_largest_accepted_metadata_is_stored(engine: Engine, db_url: str, tmp_path: Path) -> None:
    data = _good(tmp_path)
    data["description"] = '"\\' * (800 * 1024) + "é" * (700 * 1024)  # near the limit, as sent escaped
    data["title"] = "T" * 65_000
    result = run_cli(["resource", "add", str(write_manifest(tmp_path, data))], db_url, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    stored = scalar(engine, "SELECT metadata FROM stash_engine_resources")
    assert json.loads(stored)["description"] == data["description"]


def test_a_100000_deep_manifest_names_the_field(engine: Engine, db_url: str, tmp_path: Path) -> None:
    text = json.dumps(_good(tmp_path))
    deep = text[:-1] + ', "keywords": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "deep.json"
    path.write_text(deep)
    message = _refused(db_url, path, "keywords[0][0][0]…", engine)
    assert "nested deeper than" in message


def test_a_source_password_in_an_error_is_masked(engine: Engine, db_url: str, tmp_path: Path) -> None:
    data = _good(tmp_path)
    data["files"][0]["source"] = "ftp://alice:PASSWORD-x9@h.example/a.csv"
    message = _refused(db_url, write_manifest(tmp_path, data), "files[0].source", engine)
    assert "PASSWORD-x9" not in message and "alice:***@" in message


def test_publishing_a_version_with_nothing_staged_is_refused(engine: Engine, db_url: str, tmp_path: Path) -> None:
    rid = add_resource(engine, _good(tmp_path))  # data files only
    for kind in ("software", "supp"):
        result = run_cli(["zenodo", "send", str(rid), "--type", kind, "--publish"], db_url)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"resource {rid} has no {kind} files and no staged {kind} deposition: nothing to publish" \
            in result.stderr, result.stderr
    assert scalar(engine, "SELECT COUNT(*) FROM stash_engine_zenodo_copies") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
