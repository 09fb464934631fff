"""The one secret masker: every text that may reach a log line, ``last_error``, ``error_info`` or a
copy's ``note`` passes through ``mask``.

What it hides, whatever job or module produced the text:

- the values registered with ``add_secret`` (every setting marked SECRET in config.py, registered by
  ``register_settings`` wherever settings are loaded for a process: the CLI and so the daemon, the
  supervisor and its forked workers), also percent-encoded, as they appear in URLs;
- ``Authorization`` header values and ``Bearer`` credentials;
- secret query parameters (access tokens, presigned-URL signatures and credentials);
- the password of a URL's ``user:password@`` part (shown ``user:***@``, as SQLAlchemy shows URLs).

Masking is applied where texts are stored (``store.queue.cap_error``, the copy log and notes) and by
the log handlers' filter, so a job author cannot forget it.  Seen before (issue 7): a job's exception
holding the Zenodo token stored verbatim in ``last_error``; a manifest source
``http://alice:PASSWORD@host/file`` put the password 26 times into ``error_info`` and the log.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from .config import Settings

HIDDEN = "hidden"
URL_PASSWORD = "***"
MIN_SECRET = 4  # shorter values would garble every text they happen to occur in

_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])(access_token|refresh_token|id_token|token|api_key|apikey|password|passwd|"
    r"client_secret|secret|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|X-Goog-Signature|"
    r"X-Goog-Credential|Signature|sig)=[^&#\s\"'<>]+")
# The value of an Authorization header, as a header line, in a dict's repr or in JSON; it runs to
# the end of the line or the closing quote.
_AUTHORIZATION = re.compile(
    r"(?i)(\b(?:Proxy-)?Authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(Bearer|Basic|Token|Digest|Negotiate|NTLM|AWS4-HMAC-SHA256)\s+)?[^\"'\r\n]+")
_BEARER = re.compile(r"(?i)\bBearer\s+(?!hidden\b)[^\s\"',;]+")
# scheme://user:password@ : the password is anything up to the last @ before the host's end.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:\"'<>]*):([^\s/?#\"'<>]*)@")

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, so that no part of a longer secret is left showing


def add_secret(secret: str | None) -> None:
    """Hide ``secret`` (and its percent-encoded form) in every text masked from now on."""
    global _secrets
    if not secret or len(secret) < MIN_SECRET:
        return
    with _lock:
        forms = set(_secrets) | {secret, quote(secret, safe="")}
        _secrets = tuple(sorted(forms, key=len, reverse=True))


def register_settings(settings: Settings) -> None:
    """Register the value of every setting marked SECRET, and the database URL's password."""
    from .config import secret_values

    for value in secret_values(settings):
        add_secret(value)
    try:
        add_secret(urlsplit(settings.database_url or "").password)
    except ValueError:
        pass  # a malformed URL: config validation reports it; its userinfo is still masked as text


def forget_secrets() -> None:
    """For tests: drop every registered secret."""
    global _secrets
    with _lock:
        _secrets = ()


def mask(text: str, *secrets: str | None) -> str:
    """``text`` with the registered secrets, ``secrets``, credentials and signatures hidden."""
    if not text:
        return text
    extra = [s for s in secrets if s and len(s) >= MIN_SECRET]
    for secret in sorted({*_secrets, *extra, *(quote(s, safe="") for s in extra)}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    text = _URL_USERINFO.sub(lambda m: f"{m[1]}{m[2]}:{URL_PASSWORD}@", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{HIDDEN}", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m[1]}={HIDDEN}", text)
    return _BEARER.sub(f"Bearer {HIDDEN}", text)


class MaskFilter(logging.Filter):
    """A handler filter: the formatted message and any traceback of each record, masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True
