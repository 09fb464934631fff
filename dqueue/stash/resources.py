"""Datasets, their versions (resources) and files: what ``dqueue resource add|show`` writes and
reads, and what the Zenodo copy jobs need to know about a version."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, func, insert, select, update

from ..store.queue import Bind, transaction
from ..store.schema import utcnow
from .manifest import Manifest, ManifestError
from .schema import generic_files as gf
from .schema import identifiers as ids
from .schema import resources as res


@dataclass(frozen=True)
class FileRow:
    id: int
    name: str
    size: int
    kind: str
    state: str
    digest: str | None
    digest_type: str | None
    source: str | None
    md5: str | None  # the MD5 streamed to Zenodo last time, or the digest when it is an MD5

    @property
    def present(self) -> bool:
        return self.state != "deleted"


@dataclass(frozen=True)
class Resource:
    id: int
    identifier_id: int
    identifier: str
    version: int
    title: str
    metadata: dict[str, Any]
    files: tuple[FileRow, ...]

    def files_of(self, kind: str, present: bool = True) -> list[FileRow]:
        return [f for f in self.files if f.kind == kind and (f.present or not present)]


def add(engine: Engine, manifest: Manifest) -> int:
    """Register one version of a dataset from a validated manifest; returns the resource id."""
    with transaction(engine) as conn:
        identifier_id = _identifier_id(conn, manifest.identifier)
        latest = conn.execute(select(func.max(res.c.version))
                              .where(res.c.identifier_id == identifier_id)).scalar()
        version = manifest.version or (latest or 0) + 1
        if latest is not None and version <= latest:
            raise ManifestError(f"version: {manifest.identifier} already has version {latest}; "
                                f"a new version must be > {latest} (or leave 'version' out)")
        resource_id = int(conn.execute(insert(res).values(
            identifier_id=identifier_id, version=version, title=manifest.title,
            metadata=json.dumps(manifest.metadata, ensure_ascii=False, sort_keys=True),
            created_at=utcnow(), updated_at=utcnow())).inserted_primary_key[0])  # type: ignore[index]
        if manifest.files:
            conn.execute(insert(gf).values(created_at=utcnow(), updated_at=utcnow()), [{
                "resource_id": resource_id, "upload_file_name": f.name, "upload_file_size": f.size,
                "digest": f.digest, "digest_type": f.digest_type, "kind": f.kind,
                "file_state": f.state, "source": f.source,
                "md5": f.digest if f.digest_type == "md5" else None,
            } for f in manifest.files])
    return resource_id


def _identifier_id(conn: Connection, identifier: str) -> int:
    found = conn.execute(select(ids.c.id).where(ids.c.identifier == identifier)).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(insert(ids).values(identifier=identifier, created_at=utcnow(),
                                               updated_at=utcnow())).inserted_primary_key[0])  # type: ignore[index]


def get(bind: Bind, resource_id: int) -> Resource | None:
    with transaction(bind) as conn:
        row = conn.execute(
            select(res, ids.c.identifier).join(ids, ids.c.id == res.c.identifier_id)
            .where(res.c.id == resource_id)).first()
        if row is None:
            return None
        files = conn.execute(select(gf).where(gf.c.resource_id == resource_id)
                             .order_by(gf.c.kind, gf.c.upload_file_name)).all()
    return Resource(int(row.id), int(row.identifier_id), row.identifier, int(row.version), row.title,
                    json.loads(row.metadata), tuple(_file(f) for f in files))


def _file(f: Any) -> FileRow:
    return FileRow(int(f.id), f.upload_file_name, int(f.upload_file_size), f.kind, f.file_state,
                   f.digest, f.digest_type, f.source, f.md5)


def versions(conn: Connection, identifier_id: int) -> list[tuple[int, int, frozenset[str]]]:
    """(resource id, version, kinds with present files) for every version of a dataset, in order.

    Runs in the caller's transaction (the copy-start decision holds the dataset's lock).
    """
    rows = conn.execute(select(res.c.id, res.c.version).where(res.c.identifier_id == identifier_id)
                        .order_by(res.c.version)).all()
    kinds = conn.execute(
        select(gf.c.resource_id, gf.c.kind).distinct()
        .join(res, res.c.id == gf.c.resource_id)
        .where(res.c.identifier_id == identifier_id, gf.c.file_state != "deleted")).all()
    present: dict[int, set[str]] = {}
    for resource_id, kind in kinds:
        present.setdefault(int(resource_id), set()).add(kind)
    return [(int(r.id), int(r.version), frozenset(present.get(int(r.id), ()))) for r in rows]


def identifier_id_of(bind: Bind, identifier: str) -> int | None:
    with transaction(bind) as conn:
        found = conn.execute(select(ids.c.id).where(ids.c.identifier == identifier)).scalar()
    return None if found is None else int(found)


def record_md5(bind: Bind, file_ids: Sequence[int], md5: str) -> None:
    """Remember what was streamed, so that a retried copy can skip the file (same name, size, MD5)."""
    with transaction(bind) as conn:
        conn.execute(update(gf).where(gf.c.id.in_(list(file_ids))).values(md5=md5, updated_at=utcnow()))


def known_md5(bind: Bind, identifier_id: int, file: FileRow) -> str | None:
    """The MD5 of this file's content as streamed to Zenodo, for this or an earlier version.

    A file carried over to a later version is a new row with the same name and size: its MD5 is
    the one recorded when an earlier version's row was uploaded, if the digests agree, or if the
    manifest said 'copied' (unchanged) and gave no digest.  A 'created' file without a digest
    counts only its own MD5: same name and size is not same content.
    """
    if file.md5 is not None or (file.digest is None and file.state != "copied"):
        return file.md5
    query = (select(gf.c.md5).join(res, res.c.id == gf.c.resource_id)
             .where(res.c.identifier_id == identifier_id, gf.c.upload_file_name == file.name,
                    gf.c.kind == file.kind, gf.c.upload_file_size == file.size, gf.c.md5.is_not(None))
             .order_by(res.c.version.desc()).limit(1))
    if file.digest is not None:
        query = query.where(gf.c.digest == file.digest, gf.c.digest_type == file.digest_type)
    with transaction(bind) as conn:
        return conn.execute(query).scalar()
