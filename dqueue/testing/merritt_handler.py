"""The fake Merritt's HTTP side: routing, Basic auth, the multipart form, faults and answers.

Status codes follow the public front end, merritt.cdlib.org (CDLUC3/mrt-dashboard), which checks the
user and then relays the ingest service's answer:

- ``POST /object/update`` and ``POST /object/ingest``: no valid user -> 401 (empty body); a ``profile``
  the user may not write to -> 404 (empty body); no uploaded ``file`` -> 400 "Bad file parameter.";
  otherwise the ingest's ``bat:batchState`` (200, ``bat:batchStatus`` QUEUED), JSON when
  ``responseForm=json``, else XML.  The fake also answers 400 (an ``exc:exc`` body) for a missing
  ``submitter``, which Dryad always sends.
- ``GET /api/{collection}/local_id_search?terms=ID``: an unknown collection -> 404; no object (or
  none of its versions visible yet) -> 201 with ``{}`` (sic: "The Api has been returning the 201 for
  some time"); found -> 200 with the object's info.
- ``GET /d/{ark}``: 200 and a plain listing of the latest visible version, else 404.

Unlike the real front end, which redirects a browser without a session to its login page, every
endpoint answers a missing or wrong Basic auth with 401 and ``WWW-Authenticate``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from dqueue.repository.checkm import ManifestError, parse
from dqueue.testing.merritt_state import Deposit
from dqueue.testing.server import FakeHandler, QuietServer

if TYPE_CHECKING:
    from dqueue.testing.merritt import FakeMerritt, Fault

MAX_BODY = 64 * 1024 * 1024  # a manifest lists files; it never carries them
ERROR_PAGE = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class Server(QuietServer):
    fake: FakeMerritt

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)


class _Answer(Exception):
    def __init__(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or {}


class _Handler(FakeHandler):
    server_version = "FakeMerritt/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    @property
    def fake(self) -> FakeMerritt:
        return cast(Server, self.server).fake

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self._path, self._query = split.path, parse_qs(split.query)
        length = self.headers.get("Content-Length")
        self._left = int(length) if length is not None and length.isdigit() else 0
        fault = self.fake.take_fault(self.command, self._path)
        try:
            if fault is not None and self._apply(fault):
                return
            if not self._authorized():
                raise _Answer(401, b"401 Not Authorized", headers={"WWW-Authenticate": 'Basic realm="Merritt"'})
            self._route()
        except _Answer as answer:
            self._reply(answer.status, answer.body, answer.content_type, answer.headers)
        except OSError:
            self.close_connection = True  # the client went away mid-answer

    def _apply(self, fault: Fault) -> bool:
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "reset":
            self._abort()
            return True
        if fault.kind == "401":
            raise _Answer(401, b"401 Not Authorized", headers={"WWW-Authenticate": 'Basic realm="Merritt"'})
        status = int(fault.kind)
        page = f"<html><body><h1>{status} {ERROR_PAGE[status]}</h1></body></html>".encode()
        raise _Answer(status, page, "text/html")

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (hmac.compare_digest(user.encode(), self.fake.user.encode())
                & hmac.compare_digest(password.encode(), self.fake.password.encode()))

    def _route(self) -> None:
        parts = self._path.strip("/").split("/")
        if self.command == "POST" and parts in (["object", "update"], ["object", "ingest"]):
            self._deposit(update=parts[1] == "update")
        elif self.command == "GET" and len(parts) == 3 and parts[0] == "api" and parts[2] == "local_id_search":
            self._search(unquote(parts[1]))
        elif self.command == "GET" and len(parts) >= 2 and parts[0] == "d":
            self._download(unquote(parts[1]))
        else:
            raise _Answer(404, b"Not Found")

    # -- endpoints ------------------------------------------------------------------------------

    def _deposit(self, update: bool) -> None:
        fields, files = self._form()
        if fields.get("profile") not in self.fake.profiles:
            raise _Answer(404)  # the user may not write to that profile's collection
        if "file" not in files:
            raise _Answer(400, b"Bad file parameter.\n")
        json_form = fields.get("responseForm", "").strip().lower() == "json"
        if not fields.get("submitter", "").strip():
            raise self._exception(400, "submitter is missing", json_form)
        with self.fake.lock:
            deposit = self.fake.store.accept(fields["profile"], fields["submitter"],
                                             fields.get("localIdentifier", "").strip() or None,
                                             fields.get("primaryIdentifier", "").strip() or None, update, [],
                                             fields)
        try:
            deposit.entries = parse(files["file"].decode("utf-8"))
        except (ManifestError, UnicodeDecodeError) as exc:
            # The POST only queues the job; the job finds the manifest bad and fails.
            with self.fake.lock:
                self.fake.store.fail(deposit, f"manifest: {exc}")
        else:
            self.fake.ingest(deposit)
        body, ctype = _batch_state(deposit, self.fake.profiles, json_form)
        raise _Answer(200, body, ctype)

    def _search(self, collection: str) -> None:
        if collection != self.fake.collection:
            raise _Answer(404, b"Not Found")
        terms = self._query.get("terms", [""])[0]
        with self.fake.lock:
            obj = self.fake.store.find(terms) if terms.strip() else None
            info = self.fake.store.object_info(obj) if obj else None
        if info is None:
            raise _Answer(201, b"{}", "application/json")
        raise _Answer(200, json.dumps(info).encode(), "application/json")

    def _download(self, ark: str) -> None:
        with self.fake.lock:
            obj = self.fake.store.by_ark(ark)
            info = self.fake.store.object_info(obj) if obj else None
        if info is None:
            raise _Answer(404, b"Not Found")
        latest = info["versions"][0]
        listing = "".join(f"{f['pathname']}\t{f['full_size']}\n" for f in latest["files"])
        raise _Answer(200, listing.encode(), headers={"X-Merritt-Version": str(latest["version_number"])})

    # -- bodies and answers -----------------------------------------------------------------------

    def _form(self) -> tuple[dict[str, str], dict[str, bytes]]:
        """The multipart/form-data fields (text) and uploads (bytes), by name."""
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            self._drain()
            raise _Answer(400, b"Bad file parameter.\n")
        if self._left > MAX_BODY:
            self.close_connection = True
            raise _Answer(413, b"Request Entity Too Large")
        raw = self.rfile.read(self._left)
        self._left = 0
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + raw)
        if not message.is_multipart():
            raise _Answer(400, b"Bad file parameter.\n")
        fields: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for part in cast(list[Message], message.get_payload()):
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if part.get_filename() is not None:
                files[name] = data
            else:
                fields[name] = data.decode("utf-8", errors="replace")
        return fields, files

    def _exception(self, status: int, message: str, json_form: bool) -> _Answer:
        if json_form:
            body = {"exc:exc": {"exc:statusCode": status, "exc:status": "INVALID_OR_MISSING_PARM",
                                "exc:statusDescription": message, "exc:error": message}}
            return _Answer(status, json.dumps(body).encode(), "application/json")
        xml = (f"<exc:exc xmlns:exc='http://uc3.cdlib.org/ontology/mrt/core/exc'><exc:statusCode>{status}"
               f"</exc:statusCode><exc:statusDescription>{escape(message)}</exc:statusDescription>"
               f"<exc:error>{escape(message)}</exc:error></exc:exc>")
        return _Answer(status, xml.encode(), "text/xml")

    def _drain(self) -> None:
        while self._left > 0:
            block = self.rfile.read(min(1 << 20, self._left))
            if not block:
                self.close_connection = True
                break
            self._left -= len(block)

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        if self._left > MAX_BODY:
            self.close_connection = True  # not worth reading: answer and hang up
        else:
            self._drain()
        self.fake.record(self.command, self._path, status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _abort(self) -> None:
        """Close with a TCP reset and no answer, as a crashed proxy would."""
        self.fake.record(self.command, self._path, 0)
        self._reset_connection()


def _batch_state(deposit: Deposit, profiles: frozenset[str], json_form: bool) -> tuple[bytes, str]:
    """The ingest's answer to an accepted POST: its ``bat:batchState`` (fields as in mrt-ingest's own
    samples), with the batch QUEUED."""
    state: dict[str, Any] = {
        "bat:batchID": deposit.batch_id, "bat:updateFlag": deposit.update, "bat:batchStatus": "QUEUED",
        "bat:userAgent": deposit.submitter, "bat:submissionDate": deposit.submitted,
        "bat:batchProfile": {"bat:profileID": deposit.profile, "bat:identifierScheme": "ARK",
                             "bat:identifierNamespace": "99999", "bat:objectType": "MRT-curatorial",
                             "bat:objectRole": "MRT-content", "bat:aggregateType": ""},
    }
    if json_form:
        return json.dumps({"bat:batchState": state}).encode(), "application/json"
    inner = "".join(f"<{k}>{escape(str(v).lower() if isinstance(v, bool) else str(v))}</{k}>"
                    for k, v in state.items() if not isinstance(v, dict))
    xml = f"<bat:batchState xmlns:bat='http://uc3.cdlib.org/ontology/mrt/ingest/batch'>{inner}</bat:batchState>"
    return xml.encode(), "text/xml"
