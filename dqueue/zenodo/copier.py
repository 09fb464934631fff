"""One copy of one dataset version to Zenodo: deposition, metadata, files, publish, verify.

The order of a copy's steps is chosen so that a copy interrupted anywhere (worker killed, Zenodo
down, rate limit) can simply be run again: a new deposition's id is saved the moment Zenodo
returns it, files already at Zenodo with the same name, size and MD5 are skipped, and
``newversion`` on a deposition that already has a draft returns that draft.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import Engine

from ..config import Settings
from ..stash import resources
from ..stash.resources import FileRow, Resource
from . import metadata
from . import store as zenodo_copies
from .http import ZenodoClient, ZenodoRejected
from .schema import CopyState
from .store import Copy

MAX_BYTES = 50_000_000_000  # Zenodo copies above 50 GB were never reliable (dryad.md 1.5)
MAX_FILES = 100


class CopyRefused(Exception):
    """A copy that cannot succeed as it stands (too big, too many files): no automatic retry."""


class CopyFailed(Exception):
    """The copy went wrong in a way a later start may fix (verification mismatch, publish)."""


def _md5_of(entry: dict[str, Any]) -> str:
    checksum = str(entry.get("checksum") or "")
    return checksum.split(":", 1)[1] if checksum.startswith("md5:") else checksum


class Copier:
    def __init__(self, client: ZenodoClient, engine: Engine, settings: Settings, copy: Copy,
                 resource: Resource, job_id: int, log: Callable[[str], None]) -> None:
        self.client = client
        self.engine = engine
        self.settings = settings
        self.copy = copy
        self.resource = resource
        self.job_id = job_id
        self.log = log
        self.kind = zenodo_copies.base_type(copy.copy_type)
        self.files = resource.files_of(self.kind)

    def run(self) -> str | None:
        """Do the copy; returns a note for the finished row (or None)."""
        self._check_size()
        if self.copy.copy_type == "data":
            return self._data()
        if zenodo_copies.is_publish(self.copy.copy_type):
            return self._publish_copy()
        return self._staged()

    def _check_size(self) -> None:
        total = sum(f.size for f in self.files)
        if total >= MAX_BYTES:
            raise CopyRefused(f"{self.kind} files total {total:,} bytes; copies of 50 GB or more "
                              "are not sent to Zenodo")
        if len(self.files) > MAX_FILES:
            raise CopyRefused(f"{len(self.files)} {self.kind} files; Zenodo takes at most {MAX_FILES}")

    def _save(self, dep: dict[str, Any], **extra: Any) -> None:
        values: dict[str, Any] = {"deposition_id": int(dep["id"]), **extra}
        if dep.get("conceptrecid"):
            values["conceptrecid"] = str(dep["conceptrecid"])
        zenodo_copies.save(self.engine, self.copy.id, self.job_id, **values)

    def _meta(self, doi: str | None) -> dict[str, Any]:
        return metadata.for_copy(self.resource, self.copy.copy_type, doi=doi,
                                 community=self.settings.zenodo_community,
                                 sandbox="sandbox" in self.settings.zenodo_url)

    # -- data: one deposition for the whole dataset, reopened for each version -------------------
    def _data(self) -> str | None:
        previous = zenodo_copies.previous(self.engine, self.copy)
        dep_id = self.copy.deposition_id or (previous.deposition_id if previous else None)
        if dep_id is None:
            dep = self.client.create_deposition()
        else:
            dep = self._editable(self.client.get_deposition(dep_id))
        self._save(dep)
        self.client.update_metadata(dep["id"], self._meta(None))
        dep = self._sync(dep)
        self._publish(dep)
        return None

    def _editable(self, dep: dict[str, Any]) -> dict[str, Any]:
        if dep.get("state") == "done":  # published: reopen it for edit
            self.log(f"deposition {dep['id']} is published: reopening it for edit")
            return self.client.edit(dep)
        return dep

    # -- software and supplemental: a deposition per version, via newversion ----------------------
    def _staged(self) -> str | None:
        previous = zenodo_copies.previous(self.engine, self.copy)
        changed = any(f.state in ("created", "deleted") for f in self.resource.files_of(self.kind, present=False))
        if previous is not None and not changed:
            assert previous.deposition_id is not None
            return self._metadata_only(self.client.get_deposition(previous.deposition_id), previous)
        if self.copy.deposition_id is not None:
            dep = self.client.get_deposition(self.copy.deposition_id)  # a restart: carry on with it
        elif previous is None:
            if not self.files:
                self.log(f"Nothing to submit to Zenodo for resource {self.resource.id}: no {self.kind} files")
                return "nothing to submit"
            dep = self.client.create_deposition()
            self._save(dep, software_doi=_prereserved(dep))
        else:
            assert previous.deposition_id is not None
            dep = self.client.get_deposition(previous.deposition_id)
            if dep.get("state") == "done":
                dep = self.client.newversion(dep)
            self._save(dep, software_doi=_prereserved(dep) or previous.software_doi)
        doi = _prereserved(dep) or self._current().software_doi
        self.client.update_metadata(dep["id"], self._meta(doi))
        self._sync(dep)
        return None

    def _metadata_only(self, dep: dict[str, Any], previous: Copy) -> str:
        self._save(dep, software_doi=previous.software_doi)
        if dep.get("state") == "done":
            self.log(f"Warning: no {self.kind} file changes in this version and deposition {dep['id']} "
                     "is published; Zenodo shows metadata changes only when it is published again")
            return "no file changes in this version"
        self.client.update_metadata(dep["id"], self._meta(previous.software_doi))
        return "metadata only: no file changes in this version"

    def _publish_copy(self) -> str | None:
        staged = next((c for c in zenodo_copies.find(self.engine, resource_id=self.resource.id)
                       if c.copy_type == self.kind and c.state == CopyState.FINISHED), None)
        if staged is None or staged.deposition_id is None:
            raise CopyFailed(f"resource {self.resource.id} has no finished {self.kind} copy to publish")
        dep = self._editable(self.client.get_deposition(staged.deposition_id))
        self._save(dep, software_doi=staged.software_doi)
        self.client.update_metadata(dep["id"], self._meta(staged.software_doi))
        if not self.files:
            self.client.delete_deposition(dep["id"])
            self.log(f"no {self.kind} files to publish: draft deposition {dep['id']} deleted")
            return "no files: draft deleted"
        self._verify(dep["id"], {f.name: f for f in self.files if f.size > 0})
        try:
            self._publish(dep)
        except ZenodoRejected as exc:
            if "files must differ" not in str(exc):
                raise
            return self._revert(dep)
        return None

    def _revert(self, dep: dict[str, Any]) -> str:
        """Zenodo refused a version whose files equal the previous one: keep the previous one."""
        previous = zenodo_copies.previous(self.engine, self.copy, not_on=int(dep["id"]))
        prev_id = previous.deposition_id if previous else None
        self.log(f"Zenodo: files must differ from all previous versions; deleting draft {dep['id']} "
                 f"and reverting to deposition {prev_id}")
        self.client.delete_deposition(dep["id"])
        same = [c.id for c in zenodo_copies.find(self.engine, identifier_id=self.copy.identifier_id)
                if c.deposition_id == int(dep["id"]) and c.copy_type in zenodo_copies.family(self.copy.copy_type)]
        note = "no changes in this version"
        zenodo_copies.repoint(self.engine, same, prev_id, previous.software_doi if previous else None, note)
        return note

    # -- shared steps ------------------------------------------------------------------------------
    def _current(self) -> Copy:
        found = zenodo_copies.get(self.engine, self.copy.id)
        assert found is not None
        return found

    def _sync(self, dep: dict[str, Any]) -> dict[str, Any]:
        """Make the deposition's files equal this version's present files, then verify."""
        bucket = dep["links"]["bucket"]
        at_zenodo = {f["filename"]: f for f in self.client.get_deposition(dep["id"]).get("files", [])}
        wanted = {f.name: f for f in self.files if f.size > 0}
        for f in self.files:
            if f.size == 0:
                self.log(f"skipped {f.name!r}: Zenodo does not accept zero-length files")
        for name in sorted(set(at_zenodo) - set(wanted)):
            self.client.delete_file(bucket, name)
        for name, f in sorted(wanted.items()):
            there = at_zenodo.get(name)
            known = resources.known_md5(self.engine, self.copy.identifier_id, f)
            if there and int(there.get("filesize", -1)) == f.size and known and _md5_of(there) == known:
                self.log(f"kept {name!r}: already at Zenodo with the same size and MD5 {known}")
                continue
            self._upload(bucket, f)
        return self._verify(dep["id"], wanted)

    def _upload(self, bucket: str, f: FileRow) -> None:
        assert f.source is not None
        answer = self.client.upload(bucket, f.name, f.source, size=f.size,
                                    expected_digest=f.digest, digest_type=f.digest_type)
        resources.record_md5(self.engine, [f.id], _md5_of(answer))

    def _verify(self, dep_id: int, wanted: dict[str, FileRow]) -> dict[str, Any]:
        dep = self.client.get_deposition(dep_id)
        found = {f["filename"]: f for f in dep.get("files", [])}
        problems = [f"missing {n!r}" for n in wanted if n not in found]
        problems += [f"unexpected {n!r}" for n in found if n not in wanted]
        problems += [f"{n!r} is {found[n].get('filesize')} bytes at Zenodo, {f.size} here"
                     for n, f in wanted.items() if n in found and int(found[n].get("filesize", -1)) != f.size]
        if problems:
            raise CopyFailed(f"deposition {dep_id} does not hold this version's files: " + "; ".join(problems))
        self.log(f"verified deposition {dep_id}: {len(wanted)} files, names and sizes match")
        return dep

    def _publish(self, dep: dict[str, Any]) -> None:
        dep = self.client.get_deposition(dep["id"])
        for _ in range(3):  # Zenodo sometimes takes a moment to show the result (dryad.md 1.5)
            if dep.get("state") == "done":
                break
            try:
                self.client.publish(dep)
            except ZenodoRejected as exc:
                if "files must differ" in str(exc):
                    raise
                self.log(f"publish of deposition {dep['id']} refused: {exc}")
            dep = self.client.get_deposition(dep["id"])
            if dep.get("state") != "done":
                time.sleep(self.settings.zenodo_publish_wait)
                dep = self.client.get_deposition(dep["id"])
        if dep.get("state") != "done":
            raise CopyFailed(f"publication of deposition {dep['id']} failed after three attempts")
        self.log(f"deposition {dep['id']} is published" + (f" as {dep['doi']}" if dep.get("doi") else ""))


def _prereserved(dep: dict[str, Any]) -> str | None:
    doi = ((dep.get("metadata") or {}).get("prereserve_doi") or {}).get("doi")
    return str(doi) if doi else None
