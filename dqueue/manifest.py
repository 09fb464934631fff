"""The resource manifest: one dataset version, its descriptive metadata and its files, as JSON.

``dqueue resource add MANIFEST.json`` reads it (docs/zenodo.md documents every field).  All of it
is checked before anything is written, and an error names the field: ``files[2].size: must be
a whole number >= 0``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

KINDS = ("data", "software", "supp")
FILE_STATES = ("created", "copied", "deleted")
DIGEST_LENGTHS = {"md5": 32, "sha-1": 40, "sha-256": 64}  # hex digits
ZENODO_MAX_FILES = 100
_HEX = re.compile(r"^[0-9a-f]+$")


class ManifestError(ValueError):
    """The manifest is not valid; the message names the field."""


@dataclass(frozen=True)
class FileEntry:
    name: str
    size: int
    kind: str
    state: str = "created"
    digest: str | None = None
    digest_type: str | None = None
    source: str | None = None  # http(s) URL or absolute local path; None only when deleted


@dataclass(frozen=True)
class Manifest:
    identifier: str
    title: str
    metadata: dict[str, Any]  # every descriptive field, as stored in stash_engine_resources.metadata
    files: tuple[FileEntry, ...] = field(default_factory=tuple)
    version: int | None = None  # None: the dataset's next version


def load(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from None
    return parse(data)


def parse(data: Any) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError("the manifest must be a JSON object")
    known = {"identifier", "version", "title", "creators", "description", "license",
             "software_license", "keywords", "related_identifiers", "publication_date",
             "resource_type", "notes", "files"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ManifestError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    identifier = _text(data, "identifier", required=True, limit=191) or ""
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ManifestError("version: must be a whole number >= 1")
    meta: dict[str, Any] = {
        "title": _text(data, "title", required=True),
        "creators": _creators(data.get("creators")),
        "description": _text(data, "description") or "",
        "license": _text(data, "license", limit=64) or "cc-zero",
        "software_license": _text(data, "software_license", limit=64) or "MIT",
        "keywords": _strings(data, "keywords"),
        "related_identifiers": _related(data.get("related_identifiers")),
        "publication_date": _date(data.get("publication_date")),
        "resource_type": _text(data, "resource_type", limit=32) or "dataset",
        "notes": _text(data, "notes") or "",
    }
    files = _files(data.get("files", []))
    return Manifest(identifier, meta["title"], meta, files, version)


def _text(data: dict[str, Any], key: str, required: bool = False, limit: int | None = None) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ManifestError(f"{key}: required, and must be a non-empty string")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{key}: must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise ManifestError(f"{key}: at most {limit} characters")
    return value.strip()


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ManifestError(f"{key}: must be a list of non-empty strings")
    return [v.strip() for v in value]


def _creators(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ManifestError("creators: required, a non-empty list of {\"name\": \"Family, Given\"}")
    creators = []
    for i, item in enumerate(value):
        where = f"creators[{i}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{where}: must be an object with a name")
        extra = sorted(set(item) - {"name", "affiliation", "orcid"})
        if extra:
            raise ManifestError(f"{where}.{extra[0]}: unknown field (known: name, affiliation, orcid)")
        creator = {"name": _text(item, "name", required=True) or ""}
        for key in ("affiliation", "orcid"):
            if item.get(key) is not None:
                creator[key] = _text(item, key) or ""
        creators.append(creator)
    return creators


def _related(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError("related_identifiers: must be a list of {relation, identifier}")
    out = []
    for i, item in enumerate(value):
        where = f"related_identifiers[{i}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{where}: must be an object")
        for key in ("relation", "identifier"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ManifestError(f"{where}.{key}: required, a non-empty string")
        entry = {"relation": item["relation"].strip(), "identifier": item["identifier"].strip()}
        if item.get("resource_type") is not None:
            if not isinstance(item["resource_type"], str):
                raise ManifestError(f"{where}.resource_type: must be a string")
            entry["resource_type"] = item["resource_type"]
        out.append(entry)
    return out


def _date(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat() if isinstance(value, str) else _bad_date()
    except ValueError:
        return _bad_date()


def _bad_date() -> str:
    raise ManifestError("publication_date: must be a date written YYYY-MM-DD")


def _files(value: Any) -> tuple[FileEntry, ...]:
    if not isinstance(value, list):
        raise ManifestError("files: must be a list")
    entries: list[FileEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(value):
        entry = _file(item, f"files[{i}]")
        key = (entry.kind, entry.name)
        if key in seen:
            raise ManifestError(f"files[{i}].name: {entry.name!r} ({entry.kind}) is already files[{seen[key]}]")
        seen[key] = i
        entries.append(entry)
    for kind in KINDS:
        present = [e for e in entries if e.kind == kind and e.state != "deleted"]
        if len(present) > ZENODO_MAX_FILES:
            raise ManifestError(f"files: {len(present)} {kind} files; Zenodo takes at most "
                                f"{ZENODO_MAX_FILES} per record (zip some of them together)")
    return tuple(entries)


def _file(item: Any, where: str) -> FileEntry:
    if not isinstance(item, dict):
        raise ManifestError(f"{where}: must be an object")
    known = {"name", "size", "digest", "digest_type", "kind", "state", "source"}
    extra = sorted(set(item) - known)
    if extra:
        raise ManifestError(f"{where}.{extra[0]}: unknown field (known: {', '.join(sorted(known))})")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name or len(name) > 1000:
        raise ManifestError(f"{where}.name: required, a file name without '/' (at most 1000 characters)")
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"{where}.size: required, a whole number of bytes >= 0")
    kind = item.get("kind", "data")
    if kind not in KINDS:
        raise ManifestError(f"{where}.kind: must be one of {', '.join(KINDS)}")
    state = item.get("state", "created")
    if state not in FILE_STATES:
        raise ManifestError(f"{where}.state: must be one of {', '.join(FILE_STATES)}")
    digest, digest_type = item.get("digest"), item.get("digest_type")
    if (digest is None) != (digest_type is None):
        raise ManifestError(f"{where}.digest: digest and digest_type go together")
    if digest is not None:
        if digest_type not in DIGEST_LENGTHS:
            raise ManifestError(f"{where}.digest_type: must be one of {', '.join(DIGEST_LENGTHS)}")
        if (not isinstance(digest, str) or len(digest) != DIGEST_LENGTHS[digest_type]
                or not _HEX.match(digest.lower())):
            raise ManifestError(f"{where}.digest: must be {DIGEST_LENGTHS[digest_type]} hex digits for {digest_type}")
        digest = digest.lower()
    source = item.get("source")
    if state != "deleted" or source is not None:
        source = _source(source, f"{where}.source", required=state != "deleted")
    return FileEntry(name.strip(), size, kind, state, digest, digest_type, source)


def _source(value: Any, where: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise ManifestError(f"{where}: required for a file that is not deleted "
                                "(an http(s) URL or an absolute local path)")
        return None
    if not isinstance(value, str) or len(value) > 4000:
        raise ManifestError(f"{where}: must be an http(s) URL or an absolute local path")
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return value
    if parsed.scheme == "file" and parsed.path.startswith("/"):
        return value
    if parsed.scheme == "" and value.startswith("/"):
        return value
    raise ManifestError(f"{where}: {value!r} is neither an http(s) URL nor an absolute local path")
