"""Zenodo's legacy deposit API, a thin layer on the shared HTTP layer (dqueue/http.py).

Errors are classified there, once: 429 waits for ``Retry-After``, else ``X-RateLimit-Reset``
(epoch), within ``max_wait``, then ``ZenodoRateLimited``; 5xx, timeouts, connection errors and a
source that failed mid-stream are retried with backoff, then ``ZenodoTransient``; any other 4xx is
``ZenodoRejected`` at once.  The token goes in a bearer header, only to the base URL's host.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .. import http
from ..backoff import Backoff
from .upload import (
    ChecksumMismatch,
    SourceError,
    UploadBody,
    UploadError,
    describe,
    new_digest,
    open_source,
)

LOG_BODY = http.LOG_BODY
DEPOSITIONS = "/api/deposit/depositions"
Dep = Mapping[str, Any] | int | str


class ZenodoError(http.HttpError):
    """A Zenodo request failed.  The message names method, URL, status and Zenodo's message/errors."""


class ZenodoRejected(ZenodoError, http.Rejected):
    """A 4xx other than 429: the request is wrong as it stands; retrying it will not help."""


class ZenodoTransient(ZenodoError, http.Transient):
    """5xx, timeout or connection error, still failing after the client's ``attempts`` tries."""


class ZenodoRateLimited(ZenodoError, http.RateLimited):
    """429 asking for a longer wait than ``max_wait`` allows: retry the job after ``wait`` seconds."""


class ZenodoClient(http.HttpClient):
    Error = ZenodoError
    RejectedError = ZenodoRejected
    TransientError = ZenodoTransient
    RateLimitedError = ZenodoRateLimited
    rate_limit_reset_header = "X-RateLimit-Reset"
    abort_errors = (UploadError,)
    retry_errors = (SourceError, ChecksumMismatch)

    def __init__(self, base_url: str, token: str, *, timeout: tuple[float, float] = (30, 180), attempts: int = 5,
                 backoff: float = 2.0, backoff_max: float = 60.0, max_wait: float = 900.0,
                 pace: Callable[[], None] | None = None, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not token:
            raise ValueError("Zenodo token is empty")
        super().__init__(base_url, http.Bearer(base_url, token), timeout=timeout,
                         policy=Backoff(attempts=attempts, base=backoff, max=backoff_max),
                         max_wait=max_wait, pace=pace, log=log, sleep=sleep,
                         headers={"Accept": "application/json", "User-Agent": "dqueue-zenodo"})
        self.token = token

    def __repr__(self) -> str:
        return f"ZenodoClient({self.base_url!r})"

    # -- depositions --------------------------------------------------------------------------

    def create_deposition(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._dict("POST", self.base_url + DEPOSITIONS, {} if metadata is None else {"metadata": metadata})

    def get_deposition(self, dep_id: int | str) -> dict[str, Any]:
        return self._dict("GET", self._dep_url(dep_id))

    def get(self, url: str) -> Any:
        return self.call("GET", url)

    def update_metadata(self, dep_id: int | str, metadata: dict[str, Any]) -> dict[str, Any]:
        return self._dict("PUT", self._dep_url(dep_id), {"metadata": metadata})

    def publish(self, dep: Dep) -> dict[str, Any]:
        return self._dict("POST", self._link(dep, "publish"))

    def edit(self, dep: Dep) -> dict[str, Any]:
        return self._dict("POST", self._link(dep, "edit"))

    def discard(self, dep: Dep) -> dict[str, Any]:
        return self._dict("POST", self._link(dep, "discard"))

    def newversion(self, dep: Dep) -> dict[str, Any]:
        """Create (or find: Zenodo keeps one) the new-version draft of ``dep``, the concept's latest
        version, and return the draft, not the original that Zenodo answers with."""
        url = self._link(dep, "newversion")
        original = self._dict("POST", url)
        draft_url = (original.get("links") or {}).get("latest_draft")
        if not draft_url:
            raise ZenodoError(self.mask(f"POST {url}: the answer has no links.latest_draft"), body=original)
        return self._dict("GET", draft_url)

    def delete_deposition(self, dep_id: int | str) -> None:
        self.call("DELETE", self._dep_url(dep_id), ok_404=True)

    # -- bucket -------------------------------------------------------------------------------

    def list_bucket(self, bucket_url: str) -> dict[str, Any]:
        return self._dict("GET", bucket_url)

    def delete_file(self, bucket_url: str, filename: str) -> None:
        self.call("DELETE", _file_url(bucket_url, filename), ok_404=True)

    def upload(self, bucket_url: str, filename: str, source: str, *, size: int, expected_digest: str | None = None,
               digest_type: str | None = None) -> dict[str, Any]:
        """Stream ``source`` (http(s) URL, file:// URL or absolute path) to ``<bucket>/<filename>``.

        The whole stream is re-sent, re-opening the source, on transient failures and when Zenodo's MD5
        differs from the one computed while sending.  Raises ``UploadError`` when the source is not
        ``size`` bytes or its digest is not ``expected_digest`` (in ``digest_type``: sha-256, md5...).
        """
        url = _file_url(bucket_url, filename)
        if size <= 0:
            raise UploadError(f"{filename}: size must be positive (Zenodo rejects empty files), not {size}")
        if digest_type:
            new_digest(digest_type)  # an unsupported type fails before any transfer
        if expected_digest and not digest_type:
            raise UploadError(f"{filename}: expected_digest needs digest_type")

        def attempt() -> dict[str, Any]:
            self.write_log(f"upload {filename} from {describe(source)} ({size} bytes)")
            with open_source(source, timeout=self.timeout) as stream:
                body = UploadBody(stream, size, digest_type=digest_type, expected_digest=expected_digest)
                answer = self.once("PUT", url, data=body, headers={"Content-Type": "application/octet-stream"})
            body.verify(answer)
            return answer  # type: ignore[no-any-return]  # verify() made sure it is a dict

        try:
            return self.retrying(attempt)
        except ChecksumMismatch:
            # Zenodo holds other bytes than the source's under this name: remove them so that they
            # cannot be published by a later step.
            try:
                self.delete_file(bucket_url, filename)
            except ZenodoError as exc:
                self.write_log(f"could not remove the mismatched {filename}: {exc}")
            raise

    # -- URLs -----------------------------------------------------------------------------------

    def _dep_url(self, dep_id: int | str) -> str:
        return f"{self.base_url}{DEPOSITIONS}/{dep_id}"

    def _link(self, dep: Dep, action: str) -> str:
        if isinstance(dep, Mapping):
            link = (dep.get("links") or {}).get(action)
            return str(link) if link else f"{self._dep_url(dep['id'])}/actions/{action}"
        return f"{self._dep_url(dep)}/actions/{action}"

    def _dict(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        result = self.call(method, url, body)
        if not isinstance(result, dict):
            raise ZenodoError(self.mask(f"{method} {url}: expected a JSON object, got {type(result).__name__}"),
                              body=result)
        return result


def _file_url(bucket_url: str, filename: str) -> str:
    return f"{bucket_url.rstrip('/')}/{quote(filename, safe='')}"
