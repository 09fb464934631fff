"""Merritt ingest object manifests in the checkm format: build one, and parse one strictly.

The format is checkm 0.7 specialised by Merritt's ``mrt-ingest-manifest`` profile.  The header lines
and the field order are Merritt's own: the sample ``sampleFiles/4blocks.checkm`` and the manifest
validator (``manifest/checkm.js``, ``fields.js``, ``profile.js``) in CDLUC3/mrt-doc, and the
``merritt-manifest`` gem's ``Merritt::Manifest::Object`` that Dryad used.  What we take from them:

- fields are separated by ``|`` (with a space either side); an empty field is left empty;
- the file name may hold ``/`` (``folder1/4blocks.txt`` in mrt-doc's test cases) and must be unique
  in the manifest; Merritt stores it as ``producer/<name>``;
- the URL must be http or https; hash algorithms are Merritt's names (``md5``, ``sha-256``; its core
  library also knows ``sha-1``), matched without regard to case;
- the manifest ends with ``#%eof`` and one newline, nothing after it.
"""
from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

DECLARATION = "#%checkm_0.7"
PROFILE = "#%profile | http://uc3.cdlib.org/registry/ingest/manifest/mrt-ingest-manifest"
PREFIXES = ("#%prefix | mrt: | http://merritt.cdlib.org/terms#",
            "#%prefix | nfo: | http://www.semanticdesktop.org/ontologies/2007/03/22/nfo#")
FIELDS = ("nfo:fileUrl", "nfo:hashAlgorithm", "nfo:hashValue", "nfo:fileSize", "nfo:fileLastModified",
          "nfo:fileName", "mrt:mimeType")
FIELDS_LINE = "#%fields | " + " | ".join(FIELDS)
EOF_LINE = "#%eof"
HEADER = (DECLARATION, PROFILE, *PREFIXES, FIELDS_LINE)


class HashAlgorithm(enum.Enum):
    """A digest algorithm as Merritt names it in a manifest."""
    MD5 = "md5"
    SHA1 = "sha-1"
    SHA256 = "sha-256"

    @property
    def hashlib_name(self) -> str:
        return self.value.replace("-", "")

    @property
    def hex_length(self) -> int:
        return {"md5": 32, "sha-1": 40, "sha-256": 64}[self.value]


class ManifestError(ValueError):
    """A manifest (or an entry for one) that Merritt would refuse; the message names the entry or line."""


@dataclass(frozen=True)
class Entry:
    """One file of a deposit: where Merritt fetches it, what it must find there, and its name."""
    url: str
    file_name: str  # relative to the object's producer/ folder; may hold '/' for sub-folders
    hash_algorithm: HashAlgorithm | None = None
    hash_value: str | None = None  # lowercase hex
    size: int | None = None
    last_modified: datetime | None = None
    mime_type: str | None = None


def build(entries: Sequence[Entry]) -> str:
    """The manifest text listing ``entries`` in order; ValueError (ManifestError) names a bad entry."""
    seen: dict[str, int] = {}
    lines = list(HEADER)
    for i, entry in enumerate(entries):
        where = f"entry {i} ({entry.file_name!r})"
        check(entry, where)
        if entry.file_name in seen:
            raise ManifestError(f"{where}: file name already used by entry {seen[entry.file_name]}")
        seen[entry.file_name] = i
        lines.append(_line(entry))
    lines.append(EOF_LINE)
    return "\n".join(lines) + "\n"


def check(entry: Entry, where: str = "entry") -> None:
    """Raise ManifestError unless ``entry`` can be written to a manifest and fetched by Merritt."""
    for name, value in (("url", entry.url), ("file_name", entry.file_name), ("hash_value", entry.hash_value),
                        ("mime_type", entry.mime_type)):
        if value is not None:
            _plain_field(value, f"{where}.{name}")
    _check_url(entry.url, f"{where}.url")
    check_name(entry.file_name, f"{where}.file_name")
    if (entry.hash_algorithm is None) != (entry.hash_value is None):
        raise ManifestError(f"{where}: hash_algorithm and hash_value go together")
    if entry.hash_algorithm is not None and entry.hash_value is not None:
        if not re.fullmatch(f"[0-9a-f]{{{entry.hash_algorithm.hex_length}}}", entry.hash_value):
            raise ManifestError(f"{where}.hash_value: must be {entry.hash_algorithm.hex_length} lowercase hex "
                                f"digits for {entry.hash_algorithm.value}")
    if entry.size is not None and (isinstance(entry.size, bool) or entry.size < 0):
        raise ManifestError(f"{where}.size: must be a whole number of bytes >= 0")
    if entry.mime_type is not None and not re.fullmatch(r"[\w.+-]+/[\w.+-]+", entry.mime_type):
        raise ManifestError(f"{where}.mime_type: {entry.mime_type!r} is not a media type such as text/plain")


def check_name(name: str, where: str = "file name") -> None:
    """A relative path inside the object: no leading '/', no empty, '.' or '..' segment, no '\\'."""
    _plain_field(name, where)
    if not name or name != name.strip():
        raise ManifestError(f"{where}: {name!r} must be non-empty, without surrounding spaces")
    if name.startswith("/") or "\\" in name:
        raise ManifestError(f"{where}: {name!r} must be a relative path with '/' separators")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ManifestError(f"{where}: {name!r} holds an empty, '.' or '..' path segment")


def parse(text: str) -> list[Entry]:
    """The entries of a manifest, refusing anything Merritt's ingest manifest profile does not allow:
    another header, a missing or misplaced ``#%eof``, a wrong field count, a bad value, a repeated name."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if "#%eof" not in (line.strip() for line in lines):
        raise ManifestError("no #%eof line: the manifest is cut short")
    for n, expected in enumerate(HEADER, start=1):
        got = lines[n - 1].strip() if n <= len(lines) else "(end of manifest)"
        if _squeeze(got) != _squeeze(expected):
            raise ManifestError(f"line {n}: expected {expected!r}, found {got!r}")
    entries: list[Entry] = []
    names: dict[str, int] = {}
    for n in range(len(HEADER) + 1, len(lines) + 1):
        line = lines[n - 1].strip()
        if line == EOF_LINE:
            if n != len(lines):
                raise ManifestError(f"line {n + 1}: text after #%eof")
            return entries
        if not line or (line.startswith("#") and not line.startswith("#%")):
            continue  # blank lines and comments, as checkm allows
        if line.startswith("#%"):
            raise ManifestError(f"line {n}: unexpected header {line.split(' ')[0]!r} among the entries")
        entry = _entry(line, f"line {n}")
        if entry.file_name in names:
            raise ManifestError(f"line {n}: file name {entry.file_name!r} already on line {names[entry.file_name]}")
        names[entry.file_name] = n
        entries.append(entry)
    raise ManifestError("no #%eof line: the manifest is cut short")  # pragma: no cover - checked above


def format_time(when: datetime) -> str:
    """``nfo:fileLastModified`` as ISO 8601 in UTC, e.g. 2026-12-02T07:00:00Z."""
    if when.tzinfo is None:
        raise ManifestError("last_modified: needs a time zone")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(entry: Entry) -> str:
    fields = [entry.url, entry.hash_algorithm.value if entry.hash_algorithm else "", entry.hash_value or "",
              "" if entry.size is None else str(entry.size),
              format_time(entry.last_modified) if entry.last_modified else "", entry.file_name,
              entry.mime_type or ""]
    return " | ".join(fields).rstrip()


def _entry(line: str, where: str) -> Entry:
    fields = [f.strip() for f in line.split("|")]
    if len(fields) == len(FIELDS) - 1:
        fields.append("")  # Merritt's own samples leave the trailing mrt:mimeType out
    if len(fields) != len(FIELDS):
        raise ManifestError(f"{where}: {len(fields)} fields; the ingest manifest has {len(FIELDS)}")
    url, algorithm, value, size, modified, name, mime = fields
    try:
        entry = Entry(url=url, file_name=name,
                      hash_algorithm=HashAlgorithm(algorithm.lower()) if algorithm else None,
                      hash_value=value.lower() or None, size=int(size) if size else None,
                      last_modified=_time(modified) if modified else None, mime_type=mime or None)
    except ValueError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    if size and not size.isdigit():
        raise ManifestError(f"{where}: size {size!r} is not a whole number")
    check(entry, where)
    return entry


def _time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"fileLastModified {text!r} has no time zone")
    return when


def _plain_field(value: str, where: str) -> None:
    if "|" in value:
        raise ManifestError(f"{where}: {value!r} holds '|', the manifest's field separator")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise ManifestError(f"{where}: {value!r} holds a newline or control character")


def _check_url(url: str, where: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ManifestError(f"{where}: {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ManifestError(f"{where}: {url!r} is not an http(s) URL Merritt can fetch")
    if " " in url:
        raise ManifestError(f"{where}: {url!r} holds a space; percent-encode it")


def _squeeze(line: str) -> str:
    return re.sub(r"\s*\|\s*", " | ", line).lower()
