"""Shared by the Zenodo tests: a fake Zenodo, settings that make copies fast, manifests on disk."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dqueue.stash import manifest, resources
from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo import store as zenodo_copies
from tests.workers import FAST

TOKEN = "s3cr3t-zenodo-token-4711"
ZFAST = {"DQUEUE_ZENODO_TOKEN": TOKEN, "DQUEUE_ZENODO_REQUEST_INTERVAL": "0",
         "DQUEUE_ZENODO_HTTP_BACKOFF": "0.01", "DQUEUE_ZENODO_HTTP_ATTEMPTS": "3",
         "DQUEUE_ZENODO_RETRY_DELAY": "0.2", "DQUEUE_ZENODO_RECHECK": "0.3",
         "DQUEUE_ZENODO_PUBLISH_WAIT": "0.05"}


def zenv(fake: FakeZenodo, flag_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a worker or CLI that talks to ``fake``."""
    return {**FAST, **ZFAST, "DQUEUE_ZENODO_URL": fake.url, "DQUEUE_FLAG_DIR": str(flag_dir), **extra}


def write_file(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def file_entry(folder: Path, name: str, content: bytes, kind: str = "data", state: str = "created",
               digest: str = "sha-256") -> dict[str, Any]:
    path = write_file(folder, f"{kind}-{name}", content)
    algo = {"sha-256": hashlib.sha256, "md5": hashlib.md5, "sha-1": hashlib.sha1}[digest]
    return {"name": name, "size": len(content), "kind": kind, "state": state, "source": str(path),
            "digest": algo(content).hexdigest(), "digest_type": digest}


def manifest_for(identifier: str, files: list[dict[str, Any]], version: int | None = None,
                 title: str = "Bird counts") -> dict[str, Any]:
    data: dict[str, Any] = {"identifier": identifier, "title": f"{title} ({identifier})",
                            "creators": [{"name": "Lovelace, Ada", "affiliation": "UC"}],
                            "description": "Counts of birds.", "keywords": ["birds"], "files": files}
    if version is not None:
        data["version"] = version
    return data


def add_resource(engine: Engine, data: dict[str, Any]) -> int:
    return resources.add(engine, manifest.parse(data))


def write_manifest(folder: Path, data: dict[str, Any], name: str = "manifest.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def copies(engine: Engine) -> list[zenodo_copies.Copy]:
    return zenodo_copies.find(engine)


def uploads(fake: FakeZenodo, name: str) -> list[tuple[str, str, int]]:
    """The bucket PUTs of file ``name`` that the fake saw."""
    return [r for r in fake.requests if r[0] == "PUT" and r[1].startswith("/api/files/")
            and r[1].rsplit("/", 1)[-1] == name]


def assert_secret_absent(engine: Engine, secret: str, *texts: str) -> None:
    """``secret`` is in no column of any table, and in none of ``texts`` (logs)."""
    from sqlalchemy import MetaData, select
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                assert secret not in repr(tuple(row)), f"{secret!r} found in {table.name}"
    for text in texts:
        assert secret not in text
