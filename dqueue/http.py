"""The HTTP layer every handler uses: a session with timeouts, errors classified once, retries.

- 429: wait for ``Retry-After`` (seconds or HTTP date), else the service's rate-limit reset
  header (epoch seconds: Zenodo ``X-RateLimit-Reset``, GitLab ``RateLimit-Reset``), else backoff,
  while the total waited for this request stays within ``max_wait``; past that, raise
  ``RateLimited`` carrying the wait, so the job can be rescheduled instead of holding a worker.
  Waits for 429 use up no tries: the server said when to come back.
- 5xx, timeouts, connection errors, a 2xx whose body is not the JSON asked for: retry with the
  ``Backoff`` policy (exponential, jittered), ``attempts`` tries in all, then ``Transient``.
- Any other 4xx: ``Rejected`` at once.  ``DELETE`` answered 404 counts as done when asked.

Credentials come from an auth object (``Bearer``, ``Basic``) that adds them only for the
service's own origin, never in a URL; every line handed to the ``log`` writer and every
exception message passes through ``masking.mask`` with the credentials.  ``pace`` is called
before each request (pace.py: ``Pacer`` across workers and hosts, ``RateGate`` in one process).
A ``gate`` (``RateGate``) is the in-process alternative for a client shared by many threads: it caps
their common rate, and a 429 seen by one thread holds every thread until the wait it asked for.
A capability subclasses ``HttpClient`` to give its errors its own names (``ZenodoRejected``…)
and to add its API's methods.
"""
from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from .backoff import Backoff
from .masking import mask
from .pace import Pacer, RateGate

__all__ = ["HttpError", "Rejected", "Transient", "RateLimited", "TokenHeader", "Bearer", "Basic", "make_session",
           "Pacer", "RateGate", "HttpClient", "rate_limit_wait"]

T = TypeVar("T")
LOG_BODY = 2000  # characters of a response body kept in a log line or an error
TRANSPORT_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
LogWriter = Callable[[str], None]  # receives one masked, timestamped line per request or response


# -- errors ----------------------------------------------------------------------------------

class HttpError(Exception):
    """A request failed.  The message names method, URL, status and the service's message."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class Rejected(HttpError):
    """A 4xx other than 429: the request is wrong as it stands; retrying it will not help."""


class Transient(HttpError):
    """5xx, timeout or connection error, still failing after the client's ``attempts`` tries."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, reason: str = "") -> None:
        super().__init__(message, status, body)
        self.reason = reason or (str(status) if status else "error")  # "504", "ReadTimeout"...


class RateLimited(HttpError):
    """429 asking for a longer wait than ``max_wait`` allows: retry the job after ``wait`` seconds."""

    def __init__(self, message: str, wait: float, status: int | None = 429, body: Any = None,
                 reason: str = "Retry-After") -> None:
        super().__init__(message, status, body)
        self.wait = wait
        self.reason = reason  # where the wait came from: Retry-After, the reset header or backoff


# -- auth ------------------------------------------------------------------------------------

class _OriginAuth(AuthBase):
    """Credentials only for the configured origin (a link elsewhere must not receive them).  Being
    the session's auth also stops requests from replacing them with credentials from ~/.netrc."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.origin = (parts.scheme, parts.netloc)

    def secrets(self) -> tuple[str, ...]:
        raise NotImplementedError

    def apply(self, r: requests.PreparedRequest) -> None:
        raise NotImplementedError

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(r.url or "")
        if (parts.scheme, parts.netloc) == self.origin:
            self.apply(r)
        return r


class TokenHeader(_OriginAuth):
    """A token sent in one header, as ``<prefix><token>``."""
    header: ClassVar[str] = "Authorization"
    prefix: ClassVar[str] = ""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url)
        self.token = token

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)

    def apply(self, r: requests.PreparedRequest) -> None:
        r.headers[self.header] = f"{self.prefix}{self.token}"


class Bearer(TokenHeader):
    """``Authorization: Bearer <token>`` (Zenodo, GitLab)."""
    prefix = "Bearer "


class Basic(_OriginAuth):
    """HTTP Basic (Merritt)."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        super().__init__(base_url)
        self.user = user
        self.password = password

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)

    def apply(self, r: requests.PreparedRequest) -> None:
        HTTPBasicAuth(self.user, self.password)(r)


class _Session(requests.Session):
    """A session that reads the environment (proxies and no_proxy, the CA bundle) once per origin.

    requests reads it again for every request, which measured 40 % of its CPU per request: the
    item sync's 3,643 requests are CPU-bound on two cores.  The environment of a running worker
    does not change, so the answer for an origin is kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = found
        return dict(found)


def make_session(auth: AuthBase | None, headers: Mapping[str, str] | None = None) -> requests.Session:
    session = _Session()
    session.auth = auth
    session.headers.update(headers or {})
    return session


# -- the client ------------------------------------------------------------------------------

class HttpClient:
    """One service's API over one session: ``request`` sends, classifies and retries."""

    Error: ClassVar[type[HttpError]] = HttpError
    RejectedError: ClassVar[type[Rejected]] = Rejected
    TransientError: ClassVar[type[Transient]] = Transient
    RateLimitedError: ClassVar[type[RateLimited]] = RateLimited
    rate_limit_reset_header: ClassVar[str] = "RateLimit-Reset"
    # Raised while a streamed body is being sent: logged as an aborted request, then re-raised.
    abort_errors: ClassVar[tuple[type[Exception], ...]] = ()
    # Other failures that a fresh try may cure (a source that dropped mid-stream…).
    retry_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, base_url: str, auth: _OriginAuth | None, *, timeout: tuple[float, float] = (30, 180),
                 policy: Backoff = Backoff(), max_wait: float = 900.0, pace: Callable[[], None] | None = None,
                 log: LogWriter | None = None, sleep: Callable[[float], None] = time.sleep,
                 headers: Mapping[str, str] | None = None, gate: RateGate | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.policy = policy
        self.max_wait = max_wait
        self.pace = pace
        self.log = log
        self.sleep = sleep
        self.gate = gate
        self.session = make_session(auth, headers)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def mask(self, text: str) -> str:
        return mask(text, *(self.auth.secrets() if self.auth else ()))

    # -- one request, classified --------------------------------------------------------------

    def call(self, method: str, url: str, body: Any = None, *, ok_404: bool = False) -> Any:
        """A JSON request (``body`` sent as JSON when not None), retried; returns the parsed answer."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.retrying(lambda: self.once(method, url, data=data, headers=headers, ok_404=ok_404))

    def once(self, method: str, url: str, *, data: Any = None, files: Any = None,
             headers: Mapping[str, str] | None = None, ok_404: bool = False, json_answer: bool = True) -> Any:
        """One try: pace, send, log, classify.  Raises this client's error classes.  Returns the
        parsed JSON answer; with ``json_answer=False`` a 2xx body that is not JSON comes back as
        text (masked, cut to LOG_BODY characters) instead of being retried as a proxy's page."""
        if self.pace is not None:
            self.pace()
        if self.gate is not None:
            self.gate()
        # bytes or a streamed body that knows its length; form fields (a dict) are not a size
        sized = data is not None and hasattr(data, "__len__") and not isinstance(data, (dict, list, tuple, str))
        size = f" ({len(data)} bytes)" if sized else ""
        self.write_log(f"→ {method} {url}{size}")
        start = time.monotonic()
        try:
            resp = self.session.request(method, url, data=data, files=files, headers=dict(headers or {}),
                                        timeout=self.timeout)
        except TRANSPORT_ERRORS as exc:
            message = f"{method} {url} failed after {time.monotonic() - start:.2f} s: {type(exc).__name__}: {exc}"
            self.write_log(f"← {message}")
            raise self.TransientError(self.mask(message), reason=type(exc).__name__) from exc
        except self.abort_errors as exc:  # raised by the body while sending: the connection is closed
            self.write_log(f"← aborted {method} {url} after {time.monotonic() - start:.2f} s: {exc}")
            raise
        if self.log is not None:  # decoding the body for a line nobody reads costs a tenth of a request
            self.write_log(f"← {resp.status_code} {method} {url} in {time.monotonic() - start:.2f} s: "
                           f"{resp.text[:LOG_BODY]}")
        return self.classify(method, url, resp, ok_404, json_answer)

    def classify(self, method: str, url: str, resp: requests.Response, ok_404: bool = False,
                 json_answer: bool = True) -> Any:
        status = resp.status_code
        try:
            body = resp.json() if resp.content.strip() else None
            parsed = True
        except ValueError:
            body, parsed = self.mask(resp.text[:LOG_BODY]), False
        if 200 <= status < 300:
            if parsed or not json_answer:
                return body
            # A proxy's HTML page with a 2xx is not an answer from the service: try again.
            raise self.TransientError(self.mask(f"{method} {url} → {status} with a body that is not JSON"),
                                      status, body)
        if status == 404 and ok_404 and method == "DELETE":
            return None  # already gone
        message = self.mask(f"{method} {url} → {status}{self.detail(body)}")
        if status == 429:
            wait, reason = rate_limit_wait(resp.headers, self.rate_limit_reset_header)
            raise self.RateLimitedError(message, wait, status, body, reason)
        if status >= 500:
            raise self.TransientError(message, status, body)
        raise self.RejectedError(message, status, body)

    def detail(self, body: Any) -> str:
        """The service's message and field errors, for exception text."""
        if isinstance(body, dict):
            parts = [str(body["message"])] if body.get("message") else []
            for error in body.get("errors") or []:
                if isinstance(error, dict):
                    field = error.get("field")
                    parts.append(f"{field}: {error.get('message')}" if field else str(error.get("message")))
            return ": " + "; ".join(parts) if parts else ""
        return f": {str(body)[:500]}" if body else ""

    def retrying(self, attempt: Callable[[], T]) -> T:
        tries, waited, limited = 0, 0.0, 0
        retryable: tuple[type[Exception], ...] = (Transient, *self.retry_errors)
        while True:
            try:
                return attempt()
            except RateLimited as exc:
                limited += 1
                if exc.reason == "backoff":
                    exc.wait = max(1.0, self.policy.delay(limited))
                if waited + exc.wait > self.max_wait:
                    self.write_log(f"429: would wait {exc.wait:.0f} s ({exc.reason}) after {waited:.0f} s: "
                                   "giving up")
                    raise
                self.write_log(f"429: waiting {exc.wait:.0f} s ({exc.reason})")
                if self.gate is not None:
                    self.gate.hold(exc.wait)  # every thread of this client waits, not only this one
                else:
                    self.sleep(exc.wait)
                waited += exc.wait
            except retryable as exc:
                tries += 1
                label = self._label(exc)
                if tries >= self.policy.attempts:
                    self.write_log(f"{label}: giving up after {tries} attempts")
                    raise self._exhausted(exc, tries) from exc
                delay = self.policy.delay(tries)
                self.write_log(f"{label}: retry {tries + 1}/{self.policy.attempts} in {delay:.1f} s")
                self.sleep(delay)

    def write_log(self, line: str) -> None:
        """Hand the log writer one record: timestamped, masked, on one line (a body's line breaks
        are shown as \\n, so a record can be grepped and a stored log split by line)."""
        if self.log is not None:
            now = datetime.now(timezone.utc)
            flat = self.mask(line).replace("\r", "\\r").replace("\n", "\\n")
            self.log(f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z {flat}")

    def _label(self, exc: Exception) -> str:
        if isinstance(exc, Transient):
            return exc.reason
        return f"{type(exc).__name__} ({exc})"

    def _exhausted(self, exc: Exception, tries: int) -> Exception:
        suffix = f" (gave up after {tries} attempts)"
        if isinstance(exc, HttpError):
            return self.TransientError(exc.message + suffix, exc.status, exc.body, self._label(exc))
        return type(exc)(f"{exc}{suffix}")


def rate_limit_wait(headers: Mapping[str, str], reset_header: str = "RateLimit-Reset",
                    now: Callable[[], float] = time.time) -> tuple[float, str]:
    """Seconds a 429 asks to wait, and where that came from: ``Retry-After`` (seconds or an HTTP
    date), else ``reset_header`` (epoch seconds), else ("backoff": the policy decides)."""
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
                return max(1.0, when.timestamp() - now()), "Retry-After"
    reset = headers.get(reset_header)
    if reset:
        try:
            return max(1.0, float(reset) - now()), reset_header
        except ValueError:
            pass
    return 1.0, "backoff"
