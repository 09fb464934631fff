"""Logging setup: one line per event, a stable message plus the ids an operator greps for."""
from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s [%(process)d] %(name)s: %(message)s"


def setup(level: str = "INFO", filename: str | None = None) -> None:
    formatter = logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler: logging.Handler
    if filename:
        handler = logging.FileHandler(filename)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)


_secrets: set[str] = set()


def add_secret(secret: str) -> None:
    """Never let ``secret`` reach a log line: it is replaced by "hidden" in every record."""
    if secret and len(secret) >= 4:
        _secrets.add(secret)


def mask(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "hidden")
    return text


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = mask(record.getMessage())
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask(record.exc_text)
            record.msg, record.args = message, None
        return True
