"""Logging setup: one line per event, a stable message plus the ids an operator greps for.

Every handler masks secrets (``masking.MaskFilter``); the log file is private to its owner and group.
"""
from __future__ import annotations

import logging
import os
import stat
import sys
import time

from .masking import MaskFilter

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s [%(process)d] %(name)s: %(message)s"
LOG_FILE_MODE = 0o640


def setup(level: str = "INFO", filename: str | None = None) -> None:
    formatter = logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler: logging.Handler
    if filename:
        open_private(filename)
        handler = logging.FileHandler(filename)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(MaskFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)


def open_private(path: str) -> None:
    """Create the log file 0640 whatever the umask (it holds job errors and ids), or take away the
    group's write and the world's access from an existing one; never widen its mode.

    Before this, the file was created 0644 by FileHandler, before python-daemon's umask applied.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & ~LOG_FILE_MODE:
            os.fchmod(fd, mode & LOG_FILE_MODE)
    finally:
        os.close(fd)
