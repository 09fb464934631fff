"""Which transport failures of a deposit may have reached Merritt (never re-sent) and which prove
nothing was sent (retried)."""
from __future__ import annotations

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from dqueue.repository.client import MerrittTransient, may_have_arrived


def _wrapped(cause: BaseException) -> MerrittTransient:
    try:
        raise MerrittTransient("POST … failed") from cause
    except MerrittTransient as exc:
        return exc


def test_no_connection_proves_nothing_was_sent() -> None:
    refused = requests.ConnectionError(MaxRetryError(None, "/object/update",  # type: ignore[arg-type]
                                                     NewConnectionError(None, "refused")))  # type: ignore[arg-type]
    assert not may_have_arrived(_wrapped(refused))
    assert not may_have_arrived(_wrapped(requests.ConnectTimeout("connect timed out")))


def test_a_read_timeout_or_a_dropped_answer_may_have_arrived() -> None:
    assert may_have_arrived(_wrapped(requests.ReadTimeout("read timed out")))
    dropped = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    assert may_have_arrived(_wrapped(dropped))
    assert may_have_arrived(_wrapped(requests.exceptions.ChunkedEncodingError("cut short")))
