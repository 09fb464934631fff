"""Merritt's deposit API and its object search, a thin layer on the shared HTTP layer (dqueue/http.py).

- ``deposit``: multipart ``POST {base}/object/update`` (the form Dryad sent from Feb 2023: ``file``
  the checkm manifest, ``profile``, ``localIdentifier``, ``submitter``, ``responseForm=json``,
  ``retainTargetURL=true``, and ``primaryIdentifier`` (the ARK) for a dataset Merritt already
  holds).  Merritt answers with its ingest batch state and carries the deposit out later.
- ``search``: ``GET {base}/api/{collection}/local_id_search?terms=<DOI>``; Merritt answers 201 and
  ``{}`` for a local id it does not know (yet).

Both use HTTP Basic auth for the base URL's origin only, and the connect/read timeouts configured.

A deposit is not idempotent: each one Merritt receives becomes a new version of the object.  So
its tries differ from the shared layer's in one way: a failure after which the request may have
reached Merritt (a read timeout, a connection dropped after the form was sent, a 2xx that is not
the JSON asked for) is never sent again but raised as ``DepositUncertain``, and the job asks the
object search what became of it.  Failures that prove nothing was taken in (connection refused, a
connect timeout) and 5xx answers are retried with backoff, then raised as ``MerrittTransient``;
any other 4xx is ``MerrittRejected`` at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError

from .. import http
from .settings import MerrittSettings

DEPOSIT_PATH = "/object/update"


class MerrittError(http.HttpError):
    """A Merritt request failed.  The message names method, URL, status and Merritt's answer."""


class MerrittRejected(MerrittError, http.Rejected):
    """A 4xx other than 429 (401: wrong credentials; 404: unknown profile; 400: a bad form)."""


class MerrittTransient(MerrittError, http.Transient):
    """5xx, or a connection that could not be made, still failing after every try."""


class MerrittRateLimited(MerrittError, http.RateLimited):
    """429 asking for a longer wait than the client will hold a worker for."""


class DepositUncertain(MerrittError):
    """The deposit may or may not have reached Merritt (no answer came back): never re-sent."""


@dataclass(frozen=True)
class DepositRequest:
    """What one deposit sends, besides the manifest's text."""
    manifest: str
    manifest_name: str  # the file name of the 'file' part, e.g. 7-manifest.checkm
    local_id: str  # the DOI, as Dryad sent it: doi:10.5061/dryad.x
    primary_id: str | None = None  # the ARK, when Merritt already holds the dataset

    def fields(self, settings: MerrittSettings) -> dict[str, str]:
        form = {"profile": settings.profile, "localIdentifier": self.local_id, "submitter": settings.submitter,
                "responseForm": "json", "retainTargetURL": "true"}
        if self.primary_id:
            form["primaryIdentifier"] = self.primary_id
        return form


def may_have_arrived(exc: BaseException) -> bool:
    """False only for transport failures that prove the request was never sent (no connection)."""
    cause = exc.__cause__ if isinstance(exc, http.HttpError) else exc
    while isinstance(cause, http.HttpError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, requests.ConnectTimeout):
        return False
    if isinstance(cause, requests.ConnectionError):
        inner = cause.args[0] if cause.args else None
        reason = getattr(inner, "reason", inner)
        # urllib3's NewConnectionError (refused, unreachable, name not found) is a ConnectTimeoutError.
        return not isinstance(reason, ConnectTimeoutError)
    return cause is not None  # a read timeout, a body cut short


class MerrittClient(http.HttpClient):
    Error = MerrittError
    RejectedError = MerrittRejected
    TransientError = MerrittTransient
    RateLimitedError = MerrittRateLimited

    def __init__(self, settings: MerrittSettings, *, pace: Callable[[], None] | None = None,
                 log: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings.base_url, http.Basic(settings.base_url, settings.user, settings.password),
                         timeout=settings.timeouts, policy=settings.http_policy, pace=pace, log=log, sleep=sleep,
                         headers={"Accept": "application/json", "User-Agent": "dqueue-merritt"})
        self.settings = settings

    def __repr__(self) -> str:
        return f"MerrittClient({self.base_url!r})"

    @property
    def deposit_url(self) -> str:
        return self.base_url + DEPOSIT_PATH

    def search_url(self, local_id: str) -> str:
        return f"{self.base_url}/api/{quote(self.settings.collection, safe='')}/local_id_search?terms=" \
               f"{quote(local_id, safe='')}"

    def download_url(self, ark: str) -> str:
        return f"{self.base_url}/d/{quote(ark, safe='')}"

    def deposit(self, request: DepositRequest) -> dict[str, Any]:
        """Send the deposit; returns Merritt's answer (its batch state).  Raises MerrittRejected,
        MerrittTransient (nothing was taken in), DepositUncertain (it may have been)."""
        fields = request.fields(self.settings)
        files = {"file": (request.manifest_name, request.manifest.encode(), "text/plain")}

        def attempt() -> dict[str, Any]:
            try:
                answer = self.once("POST", self.deposit_url, data=fields, files=files, json_answer=False)
            except MerrittTransient as exc:
                if exc.status is None and may_have_arrived(exc):
                    raise DepositUncertain(exc.message) from exc
                raise
            if not isinstance(answer, dict):
                raise DepositUncertain(self.mask(f"POST {self.deposit_url} → 2xx that is not Merritt's JSON: "
                                                 f"{str(answer)[:500]}"), body=answer)
            return answer
        return self.retrying(attempt)

    def search(self, local_id: str) -> dict[str, Any]:
        """The object bound to ``local_id``, or ``{}`` when Merritt has none (yet)."""
        answer = self.call("GET", self.search_url(local_id))
        return answer if isinstance(answer, dict) else {}


def version_numbers(info: dict[str, Any]) -> set[int]:
    """The version numbers a local_id_search answer lists."""
    numbers = set()
    for version in info.get("versions") or []:
        if isinstance(version, dict):
            try:
                numbers.add(int(version.get("version_number")))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
    return numbers
