"""What one deposit sends: the checkm object manifest of a version, and the staged files it lists.

Merritt pulls a deposit: every file in the manifest needs a URL Merritt can fetch.

- Data files whose source is an http(s) URL are listed at that URL, as they are.
- Data files whose source is a local path (or ``file://``) and the generated files,
  ``mrt-datacite.xml`` (always) and ``mrt-delete.txt`` (when the version deletes files), are put in
  ``<staging_dir>/<resource_id>/`` (local files hard-linked, else symlinked: never copied, they may
  be large) and listed under ``public_base_url``, the operator's web server over ``staging_dir``.

Only data files go to Merritt, as in Dryad: software and supplemental files go to Zenodo.  A file
carried over from the previous version (``copied``) is listed again; ``object/update`` replaces it
with the same bytes.  Digests: the file's own when it is one Merritt knows (md5, sha-1, sha-256),
else the sha-256 of the local file, streamed; an http(s) file without one is listed without a
digest (Merritt then checks only its size).
"""
from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..stash.resources import FileRow, Resource
from . import checkm, datacite
from .checkm import Entry, HashAlgorithm
from .settings import MerrittSettings

DATACITE_NAME = "mrt-datacite.xml"
DELETE_NAME = "mrt-delete.txt"
FILES_DIR = "files"  # local data files go under <resource_id>/files/, apart from the generated ones
CHUNK = 1024 * 1024
_ALGORITHMS = {a.value.replace("-", ""): a for a in HashAlgorithm}


class PackageRefused(ValueError):
    """The version cannot be deposited as it stands (a setting missing, a local file gone or changed);
    trying again will not help.  The message says what to fix."""


@dataclass(frozen=True)
class Package:
    manifest: str  # the checkm text, sent as the 'file' form field
    manifest_name: str
    entries: tuple[Entry, ...]
    staged: Path  # <staging_dir>/<resource_id>


def local_id(resource: Resource) -> str:
    """The dataset's DOI in the form Dryad sent Merritt as ``localIdentifier``: ``doi:10.…``."""
    try:
        return "doi:" + datacite.bare_doi(resource.identifier)
    except ValueError as exc:
        raise PackageRefused(f"resource {resource.id}: {exc}") from None


def staging_folder(settings: MerrittSettings, resource_id: int) -> Path:
    return Path(settings.staging_dir) / str(resource_id)


def build(resource: Resource, settings: MerrittSettings) -> Package:
    """Stage the files of ``resource`` that Merritt must fetch from us and write its manifest."""
    if not settings.public_base_url:
        raise PackageRefused("merritt_public_base_url is not set: Merritt fetches mrt-datacite.xml and files "
                             "with a local source from the web server over merritt_staging_dir (set both in "
                             "the [merritt] section)")
    folder = staging_folder(settings, resource.id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackageRefused(f"cannot create the staging folder {folder}: {exc.strerror or exc}") from None
    data = resource.files_of("data", present=False)
    entries = [_entry(f, resource, settings, folder) for f in data if f.present]
    xml = datacite.for_version(resource.identifier, resource.title, resource.metadata, resource.version)
    entries.append(_generated(DATACITE_NAME, xml.encode(), "text/xml", resource.id, settings, folder))
    try:
        deleted = datacite.delete_list(f.name for f in data if not f.present)
    except checkm.ManifestError as exc:
        raise PackageRefused(f"resource {resource.id}: {exc}") from None
    if deleted:
        entries.append(_generated(DELETE_NAME, deleted.encode(), "text/plain", resource.id, settings, folder))
    else:
        (folder / DELETE_NAME).unlink(missing_ok=True)  # left by an earlier build of this version
    try:
        manifest = checkm.build(entries)
    except checkm.ManifestError as exc:
        raise PackageRefused(f"resource {resource.id}: the manifest cannot be written: {exc}") from None
    return Package(manifest, f"{resource.id}-manifest.checkm", tuple(entries), folder)


def remove_staged(settings: MerrittSettings, resource_id: int) -> None:
    """Drop a version's staging folder once Merritt holds the version (best effort)."""
    shutil.rmtree(staging_folder(settings, resource_id), ignore_errors=True)


def public_url(settings: MerrittSettings, resource_id: int, relative: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/{resource_id}/{quote(relative)}"


def _entry(f: FileRow, resource: Resource, settings: MerrittSettings, folder: Path) -> Entry:
    where = f"resource {resource.id} file {f.name!r}"
    source = f.source or ""
    mime = mimetypes.guess_type(f.name)[0]
    algorithm = _ALGORITHMS.get((f.digest_type or "").lower().replace("-", "").replace("_", ""))
    digest = f.digest.lower() if f.digest and algorithm else None
    if urlsplit(source).scheme in ("http", "https"):
        return Entry(source, f.name, algorithm if digest else None, digest, f.size, None, mime)
    path = _local_path(source, where)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PackageRefused(f"{where}: its source {path} cannot be read: {exc.strerror or exc}") from None
    if size != f.size:
        raise PackageRefused(f"{where}: its source {path} holds {size} bytes, the version says {f.size}")
    if digest is None:
        algorithm, digest = HashAlgorithm.SHA256, _sha256(path, where)
    relative = f"{FILES_DIR}/{f.name}"
    _link(path, folder / relative, where)
    return Entry(public_url(settings, resource.id, relative), f.name, algorithm, digest, f.size, None, mime)


def _generated(name: str, content: bytes, mime: str, resource_id: int, settings: MerrittSettings,
               folder: Path) -> Entry:
    target = folder / name
    try:
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)  # a fetch in progress never sees half a file
    except OSError as exc:
        raise PackageRefused(f"cannot write {target}: {exc.strerror or exc}") from None
    return Entry(public_url(settings, resource_id, name), name, HashAlgorithm.SHA256,
                 hashlib.sha256(content).hexdigest(), len(content), None, mime)


def _local_path(source: str, where: str) -> Path:
    parts = urlsplit(source)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        path = Path(unquote(parts.path))
    elif parts.scheme == "" and source:
        path = Path(source)
    else:
        raise PackageRefused(f"{where}: unsupported source {source!r}: use http(s)://, file:// or an absolute path")
    if not path.is_absolute():
        raise PackageRefused(f"{where}: the source {source!r} is not an absolute path")
    return path


def _sha256(path: Path, where: str) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise PackageRefused(f"{where}: its source {path} cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _link(path: Path, target: Path, where: str) -> None:
    """Hard link (the staged file stays even if the source is moved), else a symlink."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(path, target)
        except OSError:
            target.symlink_to(path)
    except OSError as exc:
        raise PackageRefused(f"{where}: cannot stage {path} as {target}: {exc.strerror or exc}") from None
