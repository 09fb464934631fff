"""The fake Merritt's state: objects, their versions and local ids, and every deposit with its fate.

Pure data and rules, no HTTP and no fetching: ``dqueue/testing/merritt.py`` calls these methods under
one lock.  Shapes follow the real services (CDLUC3/mrt-dashboard ``InvObject#object_info`` for
``local_id_search``; CDLUC3/mrt-ingest ``HandlerMinter`` for how a local id and an ARK are bound):

- an object gets an ARK minted on its first deposit and its local id (the DOI) is bound to it;
- a deposit that names ``primaryIdentifier`` must agree with the ARK its local id is bound to, else the
  job fails (Merritt detects it in the ingest job, after the POST was accepted);
- every version lists all its files as ``producer/<name>`` with Merritt's own sha-256 digest; an update
  keeps the previous version's files, replaces those sent again and drops those ``mrt-delete.txt``
  names; the ``system/`` files real Merritt adds are left out.
"""
from __future__ import annotations

import enum
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dqueue.repository.checkm import Entry

BETANUMERIC = "0123456789bcdfghjkmnpqrstvwxz"  # the characters ARK minters use


class JobStatus(enum.Enum):
    QUEUED = "QUEUED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class StoredFile:
    pathname: str
    full_size: int
    digest_value: str  # sha-256, as Merritt reports every file whatever the manifest gave
    mime_type: str = "application/octet-stream"


@dataclass
class Version:
    number: int
    created: str
    files: dict[str, StoredFile]
    visible_at: float  # time.monotonic() from which local_id_search shows it


@dataclass
class MerrittObject:
    ark: str
    collection: str
    local_ids: list[str]
    created: str
    modified: str
    versions: list[Version] = field(default_factory=list)
    erc_who: str = "(:unas)"
    erc_what: str = "(:unas)"
    erc_when: str = "(:unas)"


@dataclass
class Deposit:
    """One accepted POST: what was asked, and (once the background ingest is done) what came of it."""
    batch_id: str
    profile: str
    submitter: str
    local_id: str | None
    primary_id: str | None
    update: bool
    entries: list[Entry]
    fields: dict[str, str]
    submitted: str
    status: JobStatus = JobStatus.QUEUED
    reason: str | None = None  # why a FAILED deposit never became a version
    ark: str | None = None
    version_number: int | None = None


class IngestFailure(Exception):
    """The ingest job fails: the version never appears; the reason is kept on the deposit."""


class Store:
    def __init__(self, collection: str, naan: str = "99999", shoulder: str = "fk4") -> None:
        self.collection = collection
        self.naan, self.shoulder = naan, shoulder
        self.objects: dict[str, MerrittObject] = {}
        self.local_ids: dict[str, str] = {}  # local id -> ARK
        self.deposits: list[Deposit] = []

    def accept(self, profile: str, submitter: str, local_id: str | None, primary_id: str | None, update: bool,
               entries: list[Entry], fields: dict[str, str]) -> Deposit:
        deposit = Deposit(f"bid-{uuid.uuid4()}", profile, submitter, local_id, primary_id, update, entries,
                          fields, now_iso())
        self.deposits.append(deposit)
        return deposit

    def fail(self, deposit: Deposit, reason: str) -> None:
        deposit.status, deposit.reason = JobStatus.FAILED, reason

    def commit(self, deposit: Deposit, files: dict[str, StoredFile], deleted: list[str], visible_at: float,
               erc: tuple[str, str, str] | None = None) -> Version:
        """Add the deposit's version to its object (minting the object if new); IngestFailure if the ids
        disagree."""
        ark = self._resolve(deposit)
        obj = self.objects.get(ark)
        stamp = now_iso()
        if obj is None:
            obj = MerrittObject(ark, self.collection, [], stamp, stamp)
            self.objects[ark] = obj
        if deposit.local_id and deposit.local_id not in obj.local_ids:
            obj.local_ids.append(deposit.local_id)
            self.local_ids[deposit.local_id] = ark
        previous = dict(obj.versions[-1].files) if obj.versions and deposit.update else {}
        for name in deleted:
            previous.pop(name if name.startswith("producer/") else f"producer/{name}", None)
        previous.update(files)
        version = Version(len(obj.versions) + 1, stamp, previous, visible_at)
        obj.versions.append(version)
        obj.modified = stamp
        if erc:
            obj.erc_who, obj.erc_what, obj.erc_when = erc
        deposit.status, deposit.ark, deposit.version_number = JobStatus.COMPLETED, ark, version.number
        return version

    def find(self, terms: str) -> MerrittObject | None:
        ark = self.local_ids.get(terms.strip())
        return self.objects.get(ark) if ark else None

    def by_ark(self, ark: str) -> MerrittObject | None:
        return self.objects.get(ark)

    def object_info(self, obj: MerrittObject, now: float | None = None) -> dict[str, Any] | None:
        """``local_id_search``'s JSON for ``obj``, showing only versions visible at ``now``; None if none is."""
        now = time.monotonic() if now is None else now
        visible = [v for v in obj.versions if v.visible_at <= now]
        if not visible:
            return None
        versions = [{"version_number": v.number, "created": v.created, "file_count": len(v.files),
                     "files": [_file_json(f) for f in v.files.values()]} for v in reversed(visible)]
        total = sum(len(v.files) for v in visible)
        return {"ark": obj.ark, "version_number": visible[-1].number, "created": obj.created,
                "modified": visible[-1].created, "erc_who": obj.erc_who, "erc_what": obj.erc_what,
                "erc_when": obj.erc_when, "versions": versions, "localids": list(obj.local_ids),
                "total_files": total, "included_files": total, "fixity": []}

    def _resolve(self, deposit: Deposit) -> str:
        bound = self.local_ids.get(deposit.local_id) if deposit.local_id else None
        if deposit.primary_id:
            if bound is not None and bound != deposit.primary_id:
                raise IngestFailure(f"local ID and primary ID mapping is incorrect: {bound} - {deposit.primary_id}")
            if not deposit.primary_id.startswith("ark:/"):
                raise IngestFailure(f"Primary ID is not an ARK: {deposit.primary_id}")
            return deposit.primary_id
        return bound or self._mint()

    def _mint(self) -> str:
        while True:
            ark = f"ark:/{self.naan}/{self.shoulder}" + "".join(secrets.choice(BETANUMERIC) for _ in range(8))
            if ark not in self.objects:
                return ark


def _file_json(f: StoredFile) -> dict[str, Any]:
    return {"pathname": f.pathname, "full_size": f.full_size, "billable_size": f.full_size,
            "mime_type": f.mime_type, "digest_value": f.digest_value, "digest_type": "sha-256"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
