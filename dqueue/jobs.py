"""The job registry, the handler payload format and the retry policy.

A row's ``handler`` column holds JSON of the form ``{"job": "<registered name>", "args": {...}}``.
Functions are looked up by registered name only: nothing in the table can name arbitrary code,
unlike delayed_job's YAML handlers (reference: delayed_job.md 1.11).
"""
from __future__ import annotations

import importlib
import json
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import capabilities
from .backoff import Backoff

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .config import Settings

MAX_HANDLER_BYTES = 16 * 1024 * 1024


class HandlerError(ValueError):
    """A handler that cannot be run: malformed JSON, wrong shape or an unknown job name."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a job is tried and how long it waits between tries.

    The delay before try n+1 is ``min(base * 2**(n-1), cap)`` with "equal jitter": a uniform
    draw from the upper half of that value, so workers that failed together do not retry together.
    """
    max_attempts: int | None = None  # None: the worker's default (settings.max_attempts)
    base: float | None = None
    cap: float | None = None

    def delay(self, attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
        b = self.base if self.base is not None else base
        c = self.cap if self.cap is not None else cap
        return Backoff(base=b, max=c, jitter=0.5).delay(attempts, rng)


@dataclass(frozen=True)
class JobDef:
    name: str
    func: Callable[..., Any]
    queue: str = "default"
    priority: int = 0
    retry: RetryPolicy = RetryPolicy()
    max_run_time: float | None = None  # None: settings.max_run_time


_REGISTRY: dict[str, JobDef] = {}
BUILTIN_MODULES = capabilities.MODULES  # every process registers every capability's jobs and hooks


@dataclass(frozen=True)
class JobContext:
    """What a running job may know about itself: its row, and the worker's settings and pool."""
    job_id: int
    attempts: int  # including this one
    max_attempts: int
    settings: "Settings"
    engine: "Engine"


_current: JobContext | None = None  # a worker runs one job at a time, on its main thread


def current() -> JobContext:
    """The context of the job running in this worker; RuntimeError outside a job."""
    if _current is None:
        raise RuntimeError("no dqueue job is running in this process")
    return _current


@contextmanager
def running(context: JobContext) -> Iterator[JobContext]:
    global _current
    _current = context
    try:
        yield context
    finally:
        _current = None


def job(name: str, *, queue: str = "default", priority: int = 0, max_attempts: int | None = None,
        max_run_time: float | None = None, backoff_base: float | None = None,
        backoff_max: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` under ``name``; the worker calls it with the job's args as keywords."""
    if not name or not isinstance(name, str):
        raise ValueError("a job needs a non-empty string name")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    if max_run_time is not None and max_run_time <= 0:
        raise ValueError("max_run_time must be > 0")

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.func is not func and (
                existing.func.__module__, existing.func.__qualname__) != (func.__module__, func.__qualname__):
            raise ValueError(f"job name {name!r} is already registered by {existing.func.__module__}")
        _REGISTRY[name] = JobDef(name, func, queue, priority,
                                 RetryPolicy(max_attempts, backoff_base, backoff_max), max_run_time)
        return func
    return register


def get(name: str) -> JobDef | None:
    return _REGISTRY.get(name)


def registered() -> list[str]:
    return sorted(_REGISTRY)


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules that register jobs (``--import`` / ``imports`` in the config file)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"cannot import job module {module!r}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - whatever the module's own code raised
            # One line for the CLI; the traceback is one `python -c "import MODULE"` away.
            raise ImportError(f"cannot import job module {module!r}: {type(exc).__name__}: "
                              f"{exc}; python -c 'import {module}' shows the traceback") from exc


def encode_handler(name: str, args: dict[str, Any] | None) -> str:
    """The JSON stored in ``delayed_jobs.handler``; raises ValueError on args JSON cannot hold."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError(f"job args must be a JSON object, got {type(args).__name__}")
    try:
        text = json.dumps({"job": name, "args": args}, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job args are not JSON-serialisable: {exc}") from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValueError("job args hold text that is not valid Unicode (a lone surrogate)") from None
    if size > MAX_HANDLER_BYTES:
        raise ValueError(f"job args are larger than {MAX_HANDLER_BYTES} bytes")
    return text


def decode_handler(handler: str | bytes | None) -> tuple[str, dict[str, Any]]:
    """Parse a handler into (job name, args); HandlerError says what is wrong with it."""
    if handler is None:
        raise HandlerError("handler is NULL")
    try:
        data = json.loads(handler)
    except (TypeError, ValueError) as exc:
        raise HandlerError(f"handler is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("job"), str) or not data["job"]:
        raise HandlerError('handler must be a JSON object {"job": "<name>", "args": {...}}')
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise HandlerError(f"handler args must be a JSON object, got {type(args).__name__}")
    extra = set(data) - {"job", "args"}
    if extra:
        raise HandlerError(f"handler has unknown keys {sorted(extra)}")
    return data["job"], args


def resolve(handler: str | bytes | None) -> tuple[JobDef, dict[str, Any]]:
    """Decode a handler and look its job up in the registry."""
    name, args = decode_handler(handler)
    jobdef = _REGISTRY.get(name)
    if jobdef is None:
        known = ", ".join(registered()) or "none"
        raise HandlerError(f"unknown job {name!r} (this worker knows: {known}); "
                           "load its module with --import or the 'imports' setting")
    return jobdef, args
