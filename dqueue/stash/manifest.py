"""The resource manifest: one dataset version, its descriptive metadata and its files, as JSON.

``dqueue resource add MANIFEST.json`` reads it (docs/zenodo.md documents every field).  All of it
is checked before anything is written, and an error names the field: ``files[2].size: must be
a whole number >= 0``.  Sizes are checked against the columns they go to (schema.py), so no
input reaches the database as a truncation, a driver error or a traceback: a 10 MB title, a
100,000-deep nested array, a lone surrogate or a 5,000-digit number each get one line naming the field.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

KINDS = ("data", "software", "supp")
FILE_STATES = ("created", "copied", "deleted")
DIGEST_LENGTHS = {"md5": 32, "sha-1": 40, "sha-256": 64}  # hex digits
ZENODO_MAX_FILES = 100
_HEX = re.compile(r"^[0-9a-f]+$")
# Column sizes (schema.py): title is a TEXT, every descriptive field goes as JSON into metadata,
# a MEDIUMTEXT (16 MiB); MariaDB counts TEXT sizes in bytes.  The metadata limit is half the column:
# the INSERT must also fit MariaDB's default max_allowed_packet (16 MiB), and the driver sends the
# JSON with its quotes and backslashes escaped (measured: 8 MiB of JSON quotes -> error 1153).
TITLE_MAX_BYTES = 65_535
METADATA_MAX_BYTES = 8 * 1024 * 1024  # as sent: UTF-8 bytes plus one per character the driver escapes
_SQL_ESCAPED = ("\\", "'", '"', "\0", "\n", "\r", "\x1a")
NAME_MAX, SOURCE_MAX, IDENTIFIER_MAX = 1000, 4000, 191  # characters (VARCHAR)
FILE_SIZE_MAX = 2**63 - 1  # BIGINT
VERSION_MAX = 2**31 - 1  # INT
MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # the metadata column's size plus room for the files
MAX_DEPTH = 16  # a manifest nests 4 levels deep; json would recurse until RecursionError


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
        size = os.path.getsize(path)
        if size > MANIFEST_MAX_BYTES:
            raise ManifestError(f"{path}: {size:,} bytes; a manifest is at most {MANIFEST_MAX_BYTES:,} bytes")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: not UTF-8 ({exc})") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    too_deep = nested_too_deep(text)
    if too_deep is not None:
        raise ManifestError(f"{too_deep or '(the manifest)'}: nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4,300 digits
        raise ManifestError(f"{path}: not valid JSON: {exc}") from None
    return parse(data)


def nested_too_deep(text: str, limit: int = MAX_DEPTH) -> str | None:
    """The path (``files[0].name``) where JSON ``text`` first nests deeper than ``limit`` arrays and
    objects, "" if at the top, or None if it does not.  A scan without recursion, before json.loads."""
    path: list[str | int] = []  # the key or index at each open level
    in_string = escaped = False
    key, after_key = "", False
    start = 0
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                key = text[start:i]
            continue
        if ch == '"':
            in_string, start = True, i + 1
        elif ch == ":":
            after_key = True
        elif ch in "[{":
            if len(path) >= limit:
                return _path_text(path[:4]) + ("…" if len(path) > 4 else "")
            if path and isinstance(path[-1], str) and after_key:
                path[-1] = key
            path.append(0 if ch == "[" else "")
            after_key = False
        elif ch in "]}":
            if path:
                path.pop()
        elif ch == ",":
            if path and isinstance(path[-1], int):
                path[-1] += 1
            after_key = False
    return None


def _path_text(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse(data: Any) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError("the manifest must be a JSON object")
    known = {"identifier", "version", "title", "creators", "description", "license",
             "software_license", "keywords", "related_identifiers", "publication_date",
             "resource_type", "notes", "files"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ManifestError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    identifier = _text(data, "identifier", required=True, limit=IDENTIFIER_MAX) or ""
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or not 1 <= version <= VERSION_MAX):
        raise ManifestError(f"version: must be a whole number from 1 to {VERSION_MAX}")
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
    _check_sizes(meta)
    files = _files(data.get("files", []))
    return Manifest(identifier, meta["title"], meta, files, version)


def _check_sizes(meta: dict[str, Any]) -> None:
    """The title fits its TEXT column and the descriptive fields, as JSON, the metadata MEDIUMTEXT;
    past that, the error names the largest field."""
    title = len(meta["title"].encode("utf-8"))
    if title > TITLE_MAX_BYTES:
        raise ManifestError(f"title: {title:,} bytes in UTF-8; at most {TITLE_MAX_BYTES:,}")
    sizes = {key: _sent_size(json.dumps(value, ensure_ascii=False)) for key, value in meta.items()}
    total = _sent_size(json.dumps(meta, ensure_ascii=False, sort_keys=True))
    if total > METADATA_MAX_BYTES:
        largest = max(sizes, key=lambda k: sizes[k])
        raise ManifestError(f"{largest}: too long, {sizes[largest]:,} bytes as stored (JSON, escaped); the "
                            f"descriptive fields together may take {METADATA_MAX_BYTES:,} (they take {total:,})")


def _sent_size(text: str) -> int:
    return len(text.encode("utf-8")) + sum(text.count(ch) for ch in _SQL_ESCAPED)


def _text(data: dict[str, Any], key: str, required: bool = False, limit: int | None = None,
          where: str | None = None) -> str | None:
    where = where or key
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ManifestError(f"{where}: required, and must be a non-empty string")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise ManifestError(f"{where}: at most {limit:,} characters, not {len(value):,}")
    _encodable(value, where)
    return value.strip()


def _encodable(value: str, where: str) -> int:
    """The UTF-8 size of ``value``; a lone surrogate (valid JSON, invalid text) names its field."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ManifestError(f"{where}: not valid Unicode text (a lone surrogate such as \\ud800)") from None


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ManifestError(f"{key}: must be a list of non-empty strings")
    for i, v in enumerate(value):
        _encodable(v, f"{key}[{i}]")
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
        creator = {"name": _text(item, "name", required=True, where=f"{where}.name") or ""}
        for key in ("affiliation", "orcid"):
            if item.get(key) is not None:
                creator[key] = _text(item, key, where=f"{where}.{key}") or ""
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
            _encodable(item[key], f"{where}.{key}")
        entry = {"relation": item["relation"].strip(), "identifier": item["identifier"].strip()}
        if item.get("resource_type") is not None:
            if not isinstance(item["resource_type"], str):
                raise ManifestError(f"{where}.resource_type: must be a string")
            _encodable(item["resource_type"], f"{where}.resource_type")
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
    name = _file_name(item.get("name"), f"{where}.name")
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"{where}.size: required, a whole number of bytes >= 0")
    if size > FILE_SIZE_MAX:
        raise ManifestError(f"{where}.size: at most {FILE_SIZE_MAX} bytes")
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
    return FileEntry(name, size, kind, state, digest, digest_type, source)


def _file_name(value: Any, where: str) -> str:
    """A plain file name: it becomes a name in a Zenodo bucket (and may become a local path one day),
    so nothing that could climb out of a folder or hide in a terminal passes."""
    rule = f"required, a plain file name (no '/', '\\', '..', NUL or control characters; at most {NAME_MAX})"
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: {rule}")
    name = value.strip()
    if len(name) > NAME_MAX:
        raise ManifestError(f"{where}: at most {NAME_MAX} characters, not {len(name):,}")
    _encodable(name, where)
    if "/" in name or "\\" in name:
        raise ManifestError(f"{where}: {name!r} is a path; {rule}")
    if name in (".", "..") or ".." in name:
        raise ManifestError(f"{where}: {name!r} contains '..'; {rule}")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        raise ManifestError(f"{where}: {name!r} holds a control character; {rule}")
    return name


def _source(value: Any, where: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise ManifestError(f"{where}: required for a file that is not deleted "
                                "(an http(s) URL or an absolute local path)")
        return None
    if not isinstance(value, str) or len(value) > SOURCE_MAX:
        raise ManifestError(f"{where}: must be an http(s) URL or an absolute local path "
                            f"(at most {SOURCE_MAX} characters)")
    _encodable(value, where)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ManifestError(f"{where}: holds a control character")
    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ManifestError(f"{where}: not a valid URL: {exc}") from None
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return value
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ManifestError(f"{where}: a file:// URL names a file on this host: "
                                f"{parsed.netloc!r} is another host (use file:///path or http(s)://)")
        if parsed.path.startswith("/"):
            return value
    if parsed.scheme == "" and value.startswith("/"):
        return value
    raise ManifestError(f"{where}: {value!r} is neither an http(s) URL nor an absolute local path")
