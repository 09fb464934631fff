"""The ``[web]`` settings section (``settings.web``): where ``dqueue web`` listens and who may call it.

    [web]
    host = "127.0.0.1"          # the address to listen on ("0.0.0.0": every interface)
    port = 8081                 # 0: any free port (the bound one is logged at start)
    tokens = ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    max_body = 1048576          # bytes: a larger request body is refused with 413
    threads = 8                 # requests served at once (and database connections at most)
    abandon_wait = 10.0         # seconds PUT /abandon waits for the worker before answering 202

Every field can also be given flat (``web_port = …``) or as ``DQUEUE_WEB_<FIELD>``
(``DQUEUE_WEB_TOKENS=tok1,sha256:…``).  A token is the bearer secret itself or ``sha256:`` and the
64 hex digits of its SHA-256 (``printf %s "$TOKEN" | sha256sum``), so the config file need not hold
it.  With no tokens every endpoint but ``/health`` and ``/webHook`` answers 401.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import SECRET, section
from ..config_values import INT_MAX, Limit

PORT = Limit(0, inclusive=True, high=65535)
THREADS = Limit(1, inclusive=True, high=1000)
MAX_BODY = Limit(1, inclusive=True, high=INT_MAX)
ABANDON_WAIT = Limit(0, inclusive=True, high=300)  # a caller's HTTP timeout is rarely longer


@section("web")
@dataclass(frozen=True)
class WebSettings:
    host: str = field(default="127.0.0.1", metadata={"non_empty": True})
    port: int = field(default=8081, metadata={"limit": PORT})
    tokens: tuple[str, ...] = field(default=(), repr=False, metadata=SECRET)
    max_body: int = field(default=1024 * 1024, metadata={"limit": MAX_BODY})
    threads: int = field(default=8, metadata={"limit": THREADS})
    abandon_wait: float = field(default=10.0, metadata={"limit": ABANDON_WAIT})
