"""The fake Zenodo's state: depositions, concepts and bucket files, and the legacy API's rules.

Pure data and rules, no HTTP: ``dqueue/testing/zenodo.py`` calls these methods under one lock and turns
``ApiError`` into Zenodo's error body ``{"message", "status", "errors": [{"field", "message"}]}``.
Files are kept as name, size and MD5 only, never their bytes, so multi-gigabyte uploads cost nothing.
"""
from __future__ import annotations

import copy
import mimetypes
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

MAX_FILES = 100
UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video", "software", "lesson",
                "physicalobject", "other"}
REQUIRED = ("upload_type", "title", "creators", "description")
DIFFER = "New version's files must differ from all previous versions."


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "status": self.status}
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass
class StoredFile:
    name: str
    size: int
    md5: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: _now())

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"


@dataclass
class Deposition:
    id: int
    conceptrecid: str
    bucket: str
    metadata: dict[str, Any]
    files: dict[str, StoredFile] = field(default_factory=dict)
    state: str = "unsubmitted"  # unsubmitted | inprogress (published, reopened by edit) | done
    submitted: bool = False
    doi: str | None = None
    created: str = field(default_factory=lambda: _now())
    modified: str = field(default_factory=lambda: _now())
    # What was last published, so that discard can roll an edit back and versions can be compared.
    published_metadata: dict[str, Any] | None = None
    published_files: dict[str, StoredFile] | None = None

    @property
    def prereserved_doi(self) -> str:
        return str(self.metadata.get("prereserve_doi", {}).get("doi", ""))

    def fileset(self, files: dict[str, StoredFile] | None = None) -> frozenset[tuple[str, str]]:
        return frozenset((f.name, f.md5) for f in (self.files if files is None else files).values())


class Registry:
    """All depositions of the fake, by id; every method raises ``ApiError`` as Zenodo would answer."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.depositions: dict[int, Deposition] = {}
        self.buckets: dict[str, int] = {}
        self._next_id = 100000

    # -- depositions --------------------------------------------------------------------------

    def create(self, body: Any) -> Deposition:
        metadata = _metadata_of(body, required=False)
        if metadata:
            _validate(metadata)
        concept = self._new_id()
        return self._new_deposition(str(concept), metadata)

    def get(self, dep_id: int) -> Deposition:
        dep = self.depositions.get(dep_id)
        if dep is None:
            raise ApiError(404, "PID does not exist.")
        return dep

    def update(self, dep_id: int, body: Any) -> Deposition:
        dep = self.get(dep_id)
        if dep.state == "done":
            raise ApiError(400, "Deposition is published and not being edited: use the edit action first.")
        metadata = _metadata_of(body, required=True)
        _validate(metadata)
        metadata["prereserve_doi"] = dep.metadata["prereserve_doi"]  # Zenodo keeps its reservation
        dep.metadata = metadata
        dep.modified = _now()
        return dep

    def delete(self, dep_id: int) -> None:
        dep = self.get(dep_id)
        if dep.submitted:
            raise ApiError(403, "You do not have permission to delete a published deposition.")
        del self.depositions[dep_id]
        del self.buckets[dep.bucket]

    def publish(self, dep_id: int) -> Deposition:
        dep = self.get(dep_id)
        if dep.state == "done":
            raise ApiError(400, "Deposition is already published.")
        errors = _missing_fields(dep.metadata)
        if not dep.files:
            errors.append({"field": "files", "message": "Minimum one file must be provided."})
        if errors:
            raise ApiError(400, "Validation error.", errors)
        mine = dep.fileset()
        for other in self.versions(dep.conceptrecid):
            if other.id != dep.id and other.published_files is not None and other.fileset(
                    other.published_files) == mine:
                raise ApiError(400, "Validation error: " + DIFFER, [{"field": "files", "message": DIFFER}])
        dep.state, dep.submitted = "done", True
        dep.doi = dep.doi or str(dep.metadata.get("doi") or dep.prereserved_doi)
        dep.published_metadata = copy.deepcopy(dep.metadata)
        dep.published_files = dict(dep.files)
        dep.modified = _now()
        return dep

    def edit(self, dep_id: int) -> Deposition:
        dep = self.get(dep_id)
        if dep.state != "done":
            raise ApiError(400, f"Deposition state does not allow for editing (e.g. depositions in state "
                                f"'{dep.state}').")
        dep.state = "inprogress"
        return dep

    def discard(self, dep_id: int) -> Deposition:
        dep = self.get(dep_id)
        if dep.state != "inprogress":
            raise ApiError(400, "Deposition is not being edited.")
        assert dep.published_metadata is not None and dep.published_files is not None
        dep.metadata = copy.deepcopy(dep.published_metadata)
        dep.files = dict(dep.published_files)
        dep.state = "done"
        return dep

    def newversion(self, dep_id: int) -> Deposition:
        """Return the original deposition; the concept's draft (new or existing) is its latest_draft."""
        dep = self.get(dep_id)
        if dep.state != "done":
            raise ApiError(400, "A new version can only be created from a published deposition that is not "
                                "being edited.")
        latest = self.latest_published(dep.conceptrecid)
        if latest is not None and latest.id != dep.id:
            raise ApiError(400, f"A new version must be created from the latest version ({latest.id}).")
        if self.draft_of(dep.conceptrecid) is None:
            metadata = copy.deepcopy(dep.metadata)
            if metadata.get("doi") == dep.prereserved_doi:
                del metadata["doi"]  # the old version's own DOI cannot be the new one's
            metadata.pop("prereserve_doi", None)
            draft = self._new_deposition(dep.conceptrecid, metadata)
            draft.files = {name: StoredFile(f.name, f.size, f.md5) for name, f in dep.files.items()}
        return dep

    def versions(self, conceptrecid: str) -> list[Deposition]:
        return sorted((d for d in self.depositions.values() if d.conceptrecid == conceptrecid), key=lambda d: d.id)

    def latest_published(self, conceptrecid: str) -> Deposition | None:
        published = [d for d in self.versions(conceptrecid) if d.submitted]
        return published[-1] if published else None

    def draft_of(self, conceptrecid: str) -> Deposition | None:
        drafts = [d for d in self.versions(conceptrecid) if not d.submitted]
        return drafts[-1] if drafts else None

    # -- bucket files -------------------------------------------------------------------------

    def by_bucket(self, bucket: str) -> Deposition:
        dep_id = self.buckets.get(bucket)
        if dep_id is None:
            raise ApiError(404, "Bucket does not exist.")
        return self.depositions[dep_id]

    def check_upload(self, dep: Deposition, name: str, length: int | None) -> None:
        """The checks Zenodo makes before it reads an uploaded body."""
        if dep.state == "done":
            raise ApiError(403, "Bucket is locked: the deposition is published.")
        if length is None:
            raise ApiError(400, "File is smaller than expected.")
        if length == 0:
            raise ApiError(400, "Empty files are not accepted.")
        if name not in dep.files and len(dep.files) >= MAX_FILES:
            raise ApiError(400, f"Too many files: a deposition may have at most {MAX_FILES}.")

    def add_file(self, dep: Deposition, name: str, size: int, md5: str) -> StoredFile:
        self.check_upload(dep, name, size)  # again: a concurrent upload may have filled the deposition
        stored = StoredFile(name, size, md5)
        dep.files[name] = stored
        dep.modified = _now()
        return stored

    def delete_file(self, dep: Deposition, name: str) -> None:
        if dep.state == "done":
            raise ApiError(403, "Bucket is locked: the deposition is published.")
        if dep.files.pop(name, None) is None:
            raise ApiError(404, "Object does not exists.")

    # -- JSON ---------------------------------------------------------------------------------

    def dep_url(self, dep_id: int) -> str:
        return f"{self.base_url}/api/deposit/depositions/{dep_id}"

    def bucket_url(self, dep: Deposition) -> str:
        return f"{self.base_url}/api/files/{dep.bucket}"

    def to_json(self, dep: Deposition) -> dict[str, Any]:
        url = self.dep_url(dep.id)
        draft = self.draft_of(dep.conceptrecid) or self.latest_published(dep.conceptrecid) or dep
        body: dict[str, Any] = {
            "id": dep.id, "record_id": dep.id, "conceptrecid": dep.conceptrecid, "state": dep.state,
            "submitted": dep.submitted, "title": dep.metadata.get("title", ""), "created": dep.created,
            "modified": dep.modified, "owner": 1, "metadata": copy.deepcopy(dep.metadata),
            "files": [self.deposition_file_json(dep, f) for f in dep.files.values()],
            "links": {
                "self": url, "html": f"{self.base_url}/deposit/{dep.id}", "bucket": self.bucket_url(dep),
                "files": f"{url}/files", "edit": f"{url}/actions/edit", "discard": f"{url}/actions/discard",
                "publish": f"{url}/actions/publish", "newversion": f"{url}/actions/newversion",
                "latest_draft": self.dep_url(draft.id), "latest_draft_html": f"{self.base_url}/deposit/{draft.id}",
            },
        }
        if dep.doi:
            body.update(doi=dep.doi, doi_url=f"https://doi.org/{dep.doi}",
                        conceptdoi=f"10.5072/zenodo.{dep.conceptrecid}")
            body["links"]["record"] = f"{self.base_url}/api/records/{dep.id}"
        return body

    def deposition_file_json(self, dep: Deposition, f: StoredFile) -> dict[str, Any]:
        return {"id": f.id, "filename": f.name, "filesize": f.size, "checksum": f"md5:{f.md5}",
                "links": {"self": f"{self.dep_url(dep.id)}/files/{f.id}",
                          "download": f"{self.bucket_url(dep)}/{quote(f.name, safe='')}"}}

    def bucket_file_json(self, dep: Deposition, f: StoredFile) -> dict[str, Any]:
        url = f"{self.bucket_url(dep)}/{quote(f.name, safe='')}"
        return {"key": f.name, "size": f.size, "checksum": f"md5:{f.md5}", "mimetype": f.mimetype,
                "version_id": f.id, "created": f.created, "updated": f.created, "is_head": True,
                "delete_marker": False, "links": {"self": url, "version": f"{url}?versionId={f.id}"}}

    def bucket_json(self, dep: Deposition) -> dict[str, Any]:
        contents = [self.bucket_file_json(dep, f) for f in dep.files.values()]
        return {"id": dep.bucket, "locked": dep.state == "done", "size": sum(f.size for f in dep.files.values()),
                "quota_size": 50_000_000_000, "max_file_size": 50_000_000_000, "contents": contents,
                "links": {"self": self.bucket_url(dep)}}

    # -- internals ----------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _new_deposition(self, conceptrecid: str, metadata: dict[str, Any]) -> Deposition:
        dep_id = self._new_id()
        metadata["prereserve_doi"] = {"doi": f"10.5072/zenodo.{dep_id}", "recid": dep_id}
        dep = Deposition(dep_id, conceptrecid, uuid.uuid4().hex, metadata)
        self.depositions[dep_id] = dep
        self.buckets[dep.bucket] = dep_id
        return dep


def _metadata_of(body: Any, *, required: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "Validation error.", [{"field": "metadata", "message": "Not a valid mapping type."}])
    if required and "metadata" not in body:
        raise ApiError(400, "Validation error.", [{"field": "metadata", "message": "Missing data for required field."}])
    return copy.deepcopy(body.get("metadata", {}))


def _missing_fields(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    errors = [{"field": f"metadata.{name}", "message": "Missing data for required field."}
              for name in REQUIRED if not metadata.get(name)]
    if metadata.get("upload_type") and metadata["upload_type"] not in UPLOAD_TYPES:
        errors.append({"field": "metadata.upload_type", "message": "Invalid upload type."})
    creators = metadata.get("creators")
    if creators and (not isinstance(creators, list) or not all(isinstance(c, dict) and c.get("name")
                                                               for c in creators)):
        errors.append({"field": "metadata.creators", "message": "Each creator needs a name."})
    return errors


def _validate(metadata: dict[str, Any]) -> None:
    errors = _missing_fields(metadata)
    if errors:
        raise ApiError(400, "Validation error.", errors)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
