"""Streaming a file to a Zenodo bucket: open its source, send it with an explicit length, check digests.

Memory stays flat whatever the size: the source is read and sent 1 MiB at a time, and MD5 (what Zenodo
reports) plus the manifest's digest are computed on the way.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import requests

BLOCK = 1 << 20  # 1 MiB: urllib3 would send a file object in 16 KiB blocks, far slower for gigabytes

# Manifest digest names (Dryad's spelling, e.g. "sha-256") to hashlib's.
DIGESTS = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384",
           "sha512": "sha512"}


class UploadError(Exception):
    """The upload cannot succeed as asked (size differs from the source, digest differs, zero size,
    unreadable local file): permanent, not retried."""


class SourceError(UploadError):
    """Reading the source failed part way, or its server answered 5xx/429: transient, the whole stream
    is retried."""


class ChecksumMismatch(UploadError):
    """Zenodo reports a different MD5 (or size) from what was streamed: retried by re-sending the file."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def describe(source: str) -> str:
    """The source for logs and errors, without its query string (a presigned URL's signature is a secret)."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return parts._replace(query="", fragment="").geturl()
    return source


def strip_queries(text: str) -> str:
    """Drop URL query strings from an error text (urllib3 quotes the URL, with any signature in it)."""
    return re.sub(r"\?[^\s)'\"]*", "?…", text)


def new_digest(digest_type: str) -> Any:
    name = DIGESTS.get(digest_type.lower().replace("-", "").replace("_", ""))
    if name is None:
        raise UploadError(f"unsupported digest type {digest_type!r}; supported: md5, sha-1, sha-224, sha-256, "
                          "sha-384, sha-512")
    return hashlib.new(name)


@contextlib.contextmanager
def open_source(source: str, *, timeout: float | tuple[float, float]) -> Iterator[Readable]:
    """Yield a binary readable for an http(s) URL (streamed GET), a ``file://`` URL or an absolute path."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        with _http_source(source, timeout) as raw:
            yield raw
        return
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):  # the manifest refuses these; rows edited by hand
            raise UploadError(f"unsupported source {describe(source)}: a file:// URL on another host")
        path = Path(unquote(parts.path))
    elif parts.scheme == "":
        path = Path(source)
    else:
        raise UploadError(f"unsupported source {describe(source)}: use http(s)://, file:// or an absolute path")
    if not path.is_absolute():
        raise UploadError(f"source path must be absolute: {source}")
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise UploadError(f"cannot open source {path}: {exc}") from exc
    with stream:
        yield stream


@contextlib.contextmanager
def _http_source(url: str, timeout: float | tuple[float, float]) -> Iterator[Readable]:
    # identity: the bytes counted and hashed must be the file's, not a gzip of it.
    try:
        resp = requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"})
    except requests.RequestException as exc:
        raise SourceError(f"GET {describe(url)} failed: {type(exc).__name__}: {strip_queries(str(exc))}") from None
    with resp:
        if resp.status_code == 429 or resp.status_code >= 500:
            raise SourceError(f"GET {describe(url)} answered {resp.status_code}")
        if not resp.ok:  # 403/404: an expired presigned URL or a missing object; retrying will not help
            raise UploadError(f"GET {describe(url)} answered {resp.status_code}")
        resp.raw.decode_content = True
        yield resp.raw


class UploadBody:
    """A ``requests`` body that streams ``size`` bytes of ``source`` with an explicit Content-Length.

    ``__len__`` makes requests send Content-Length (Zenodo answers a chunked upload with "file is
    smaller than expected"); having ``__iter__`` and no ``read`` makes urllib3 send our 1 MiB blocks as
    they are.  The source is checked before its last block goes out, so a source longer than ``size``
    or with the wrong digest aborts the connection and Zenodo never stores a wrong file.
    """

    def __init__(self, source: Readable, size: int, *, digest_type: str | None = None,
                 expected_digest: str | None = None, block: int = BLOCK) -> None:
        if size <= 0:
            raise UploadError(f"size must be positive (Zenodo rejects empty files), not {size}")
        if expected_digest and not digest_type:
            raise UploadError("expected_digest needs digest_type")
        self._source = source
        self.size = size
        self.sent = 0
        self.md5 = hashlib.md5()
        self._digest = new_digest(digest_type) if digest_type else None
        self._expected = expected_digest.lower() if expected_digest else None
        self._block = block
        self._started = False

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        if self._started:  # a second pass would send nothing: a retry must build a new body
            raise UploadError("an UploadBody can be sent only once")
        self._started = True
        while self.sent < self.size:
            chunk = self._read(min(self._block, self.size - self.sent))
            if not chunk:
                raise UploadError(f"source is shorter than its declared size: ended after {self.sent} of "
                                  f"{self.size} bytes")
            self.md5.update(chunk)
            if self._digest is not None:
                self._digest.update(chunk)
            if self.sent + len(chunk) == self.size:
                self._check_end()
            self.sent += len(chunk)
            yield chunk

    @property
    def source_digest(self) -> str | None:
        return self._digest.hexdigest() if self._digest is not None else None

    def verify(self, answer: Any) -> None:
        """Check Zenodo's answer to the PUT against what was streamed."""
        if self.sent != self.size:
            raise UploadError(f"sent {self.sent} bytes but declared {self.size}")
        if not isinstance(answer, dict):
            raise ChecksumMismatch(f"Zenodo's answer has no checksum: {str(answer)[:200]}")
        theirs = str(answer.get("checksum") or "").lower().removeprefix("md5:")
        if theirs != self.md5.hexdigest():
            raise ChecksumMismatch(f"Zenodo reports md5 {theirs or 'nothing'}, streamed {self.md5.hexdigest()}")
        if answer.get("size") is not None and answer["size"] != self.size:
            raise ChecksumMismatch(f"Zenodo reports size {answer['size']}, sent {self.size}")

    def _read(self, want: int) -> bytes:
        """Read ``want`` bytes (fewer only at the end), as sources may return short reads."""
        parts: list[bytes] = []
        got = 0
        while got < want:
            try:
                part = self._source.read(want - got)
            except Exception as exc:  # noqa: BLE001 - network or disk; urllib3 would misreport it as Zenodo's
                raise SourceError(f"reading the source failed after {self.sent + got} bytes: "
                                  f"{type(exc).__name__}: {strip_queries(str(exc))}") from None
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _check_end(self) -> None:
        if self._read(1):
            raise UploadError(f"source is longer than its declared size of {self.size} bytes")
        if self._expected is not None and self.source_digest != self._expected:
            raise UploadError(f"source digest {self.source_digest} differs from the expected {self._expected}")
