"""Zenodo's legacy deposit API over one ``requests.Session``, with HTTP errors classified once.

- 429: wait for ``Retry-After`` (seconds or HTTP date), else ``X-RateLimit-Reset`` (epoch), else backoff,
  while the total waited for this request stays within ``max_wait``; past that, raise
  ``ZenodoRateLimited`` carrying the wait, so the job can be rescheduled instead of holding a worker.
- 5xx, timeouts, connection errors: retry with exponential backoff and jitter, ``attempts`` tries in
  all, then ``ZenodoTransient``.
- Any other 4xx: ``ZenodoRejected`` at once.  ``DELETE`` answered 404 counts as done.

The token goes in an ``Authorization`` header, only to the base URL's host, never in a URL; every line
handed to ``log`` and every exception message passes through ``masking.mask`` (with the token).
"""
from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

from dqueue.handlers.zenodo.upload import (
    ChecksumMismatch,
    SourceError,
    UploadBody,
    UploadError,
    describe,
    new_digest,
    open_source,
)
from dqueue.masking import mask

T = TypeVar("T")
LOG_BODY = 2000
DEPOSITIONS = "/api/deposit/depositions"
_TRANSPORT = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
Dep = Mapping[str, Any] | int | str


class ZenodoError(Exception):
    """A Zenodo request failed.  The message names method, URL, status and Zenodo's message/errors."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class ZenodoRejected(ZenodoError):
    """A 4xx other than 429: the request is wrong as it stands; retrying it will not help."""


class ZenodoTransient(ZenodoError):
    """5xx, timeout or connection error, still failing after the client's ``attempts`` tries."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, reason: str = "") -> None:
        super().__init__(message, status, body)
        self.reason = reason or (str(status) if status else "error")  # "504", "ReadTimeout"...


class ZenodoRateLimited(ZenodoError):
    """429 asking for a longer wait than ``max_wait`` allows: retry the job after ``wait`` seconds."""

    def __init__(self, message: str, wait: float, status: int | None = 429, body: Any = None,
                 reason: str = "Retry-After") -> None:
        super().__init__(message, status, body)
        self.wait = wait
        self.reason = reason  # where the wait came from: Retry-After, X-RateLimit-Reset or backoff


class _Bearer(AuthBase):
    """Adds the token only for the configured host (a link elsewhere must not receive it).  Being
    the session's auth also stops requests from replacing it with credentials from ~/.netrc."""

    def __init__(self, token: str, origin: tuple[str, str]) -> None:
        self.token = token
        self.origin = origin

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(r.url or "")
        if (parts.scheme, parts.netloc) == self.origin:
            r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class ZenodoClient:
    def __init__(self, base_url: str, token: str, *, timeout: tuple[float, float] = (30, 180), attempts: int = 5,
                 backoff: float = 2.0, backoff_max: float = 60.0, max_wait: float = 900.0,
                 pace: Callable[[], None] | None = None, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not token:
            raise ValueError("Zenodo token is empty")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_wait = max_wait
        self.pace = pace
        self.log = log
        self.sleep = sleep
        base = urlsplit(self.base_url)
        self.session = requests.Session()
        self.session.auth = _Bearer(token, (base.scheme, base.netloc))
        self.session.headers.update({"Accept": "application/json", "User-Agent": "dqueue-zenodo"})

    def __repr__(self) -> str:
        return f"ZenodoClient({self.base_url!r})"

    def __enter__(self) -> ZenodoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def mask(self, text: str) -> str:
        return mask(text, self.token)

    # -- depositions --------------------------------------------------------------------------

    def create_deposition(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._dict("POST", self.base_url + DEPOSITIONS, {} if metadata is None else {"metadata": metadata})

    def get_deposition(self, dep_id: int | str) -> dict[str, Any]:
        return self._dict("GET", self._dep_url(dep_id))

    def get(self, url: str) -> Any:
        return self._call("GET", url)

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
        self._call("DELETE", self._dep_url(dep_id), ok_404=True)

    # -- bucket -------------------------------------------------------------------------------

    def list_bucket(self, bucket_url: str) -> dict[str, Any]:
        return self._dict("GET", bucket_url)

    def delete_file(self, bucket_url: str, filename: str) -> None:
        self._call("DELETE", _file_url(bucket_url, filename), ok_404=True)

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
            self._log(f"upload {filename} from {describe(source)} ({size} bytes)")
            with open_source(source, timeout=self.timeout) as stream:
                body = UploadBody(stream, size, digest_type=digest_type, expected_digest=expected_digest)
                answer = self._once("PUT", url, data=body, headers={"Content-Type": "application/octet-stream"})
            body.verify(answer)
            return answer  # type: ignore[no-any-return]  # verify() made sure it is a dict

        try:
            return self._retrying(attempt)
        except ChecksumMismatch:
            # Zenodo holds other bytes than the source's under this name: remove them so that they
            # cannot be published by a later step.
            try:
                self.delete_file(bucket_url, filename)
            except ZenodoError as exc:
                self._log(f"could not remove the mismatched {filename}: {exc}")
            raise

    # -- one request, classified --------------------------------------------------------------

    def _dep_url(self, dep_id: int | str) -> str:
        return f"{self.base_url}{DEPOSITIONS}/{dep_id}"

    def _link(self, dep: Dep, action: str) -> str:
        if isinstance(dep, Mapping):
            link = (dep.get("links") or {}).get(action)
            return str(link) if link else f"{self._dep_url(dep['id'])}/actions/{action}"
        return f"{self._dep_url(dep)}/actions/{action}"

    def _dict(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        result = self._call(method, url, body)
        if not isinstance(result, dict):
            raise ZenodoError(self.mask(f"{method} {url}: expected a JSON object, got {type(result).__name__}"),
                              body=result)
        return result

    def _call(self, method: str, url: str, body: Any = None, *, ok_404: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self._retrying(lambda: self._once(method, url, data=data, headers=headers, ok_404=ok_404))

    def _once(self, method: str, url: str, *, data: bytes | UploadBody | None = None,
              headers: dict[str, str] | None = None, ok_404: bool = False) -> Any:
        if self.pace is not None:
            self.pace()
        self._log(f"→ {method} {url}" + (f" ({len(data)} bytes)" if data is not None else ""))
        start = time.monotonic()
        try:
            resp = self.session.request(method, url, data=data, headers=headers, timeout=self.timeout)
        except _TRANSPORT as exc:
            message = f"{method} {url} failed after {time.monotonic() - start:.2f} s: {type(exc).__name__}: {exc}"
            self._log(f"← {message}")
            raise ZenodoTransient(self.mask(message), reason=type(exc).__name__) from exc
        except UploadError as exc:  # raised by the body while sending: urllib3 has closed the connection
            self._log(f"← aborted {method} {url} after {time.monotonic() - start:.2f} s: {exc}")
            raise
        self._log(f"← {resp.status_code} {method} {url} in {time.monotonic() - start:.2f} s: "
                  f"{resp.text[:LOG_BODY]}")
        return self._classify(method, url, resp, ok_404)

    def _classify(self, method: str, url: str, resp: requests.Response, ok_404: bool) -> Any:
        status = resp.status_code
        try:
            body = resp.json() if resp.content.strip() else None
            parsed = True
        except ValueError:
            body, parsed = self.mask(resp.text[:LOG_BODY]), False
        if 200 <= status < 300:
            if parsed:
                return body
            # A proxy's HTML page with a 2xx is not an answer from Zenodo: try again.
            raise ZenodoTransient(self.mask(f"{method} {url} → {status} with a body that is not JSON"), status, body)
        if status == 404 and ok_404 and method == "DELETE":
            return None  # already gone
        message = self.mask(f"{method} {url} → {status}{_detail(body)}")
        if status == 429:
            wait, reason = _rate_limit_wait(resp.headers)
            raise ZenodoRateLimited(message, wait, status, body, reason)
        if status >= 500:
            raise ZenodoTransient(message, status, body)
        raise ZenodoRejected(message, status, body)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        tries, waited, limited = 0, 0.0, 0
        while True:
            try:
                return attempt()
            except ZenodoRateLimited as exc:
                # Waits for 429 do not use up tries: the server said when to come back.
                limited += 1
                if exc.reason == "backoff":
                    exc.wait = max(1.0, self._backoff(limited))
                if waited + exc.wait > self.max_wait:
                    self._log(f"429: would wait {exc.wait:.0f} s ({exc.reason}) after {waited:.0f} s: giving up")
                    raise
                self._log(f"429: waiting {exc.wait:.0f} s ({exc.reason})")
                self.sleep(exc.wait)
                waited += exc.wait
            except (ZenodoTransient, SourceError, ChecksumMismatch) as exc:
                tries += 1
                label = _label(exc)
                if tries >= self.attempts:
                    self._log(f"{label}: giving up after {tries} attempts")
                    raise _exhausted(exc, tries) from exc
                delay = self._backoff(tries)
                self._log(f"{label}: retry {tries + 1}/{self.attempts} in {delay:.1f} s")
                self.sleep(delay)

    def _backoff(self, n: int) -> float:
        """Exponential (backoff, 2×, 4×... capped at backoff_max), jittered down by up to half so that
        workers failing together do not come back together."""
        delay = min(self.backoff_max, self.backoff * 2 ** (n - 1))
        return delay * random.uniform(0.5, 1.0)

    def _log(self, line: str) -> None:
        if self.log is not None:
            now = datetime.now(timezone.utc)
            self.log(f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z {self.mask(line)}")


def _file_url(bucket_url: str, filename: str) -> str:
    return f"{bucket_url.rstrip('/')}/{quote(filename, safe='')}"


def _detail(body: Any) -> str:
    """Zenodo's message and field errors, for exception text."""
    if isinstance(body, dict):
        parts = [str(body["message"])] if body.get("message") else []
        for error in body.get("errors") or []:
            if isinstance(error, dict):
                field = error.get("field")
                parts.append(f"{field}: {error.get('message')}" if field else str(error.get("message")))
        return ": " + "; ".join(parts) if parts else ""
    return f": {str(body)[:500]}" if body else ""


def _rate_limit_wait(headers: Mapping[str, str]) -> tuple[float, str]:
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(1.0, float(retry_after)), "Retry-After"
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return max(1.0, (when - datetime.now(timezone.utc)).total_seconds()), "Retry-After"
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(1.0, float(reset) - time.time()), "X-RateLimit-Reset"
        except ValueError:
            pass
    return 1.0, "backoff"


def _label(exc: Exception) -> str:
    if isinstance(exc, ZenodoTransient):
        return exc.reason
    return f"{type(exc).__name__} ({exc})"


def _exhausted(exc: Exception, tries: int) -> Exception:
    suffix = f" (gave up after {tries} attempts)"
    if isinstance(exc, ZenodoError):
        return ZenodoTransient(exc.message + suffix, exc.status, exc.body, _label(exc))
    return type(exc)(f"{exc}{suffix}")
