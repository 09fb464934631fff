"""Running one claimed job and turning what happened into an Outcome.

The job runs on the worker's main thread.  To stop a job that overran its ``max_run_time``, or
that outlived the shutdown grace period, the monitor thread sends SIGALRM to the main thread and
the handler raises ``JobInterrupted``: a BaseException, so a job's ``except Exception`` cannot
swallow it (delayed_job#1180).  A job that still does not return is ended by the monitor with
``os._exit`` after recording the outcome itself.
"""
from __future__ import annotations

import functools
import inspect
import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from .. import jobs
from ..errors import PermanentError, Reschedule


class JobInterrupted(BaseException):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "timeout" or "shutdown"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "done", "retry", "failed", "release", "reschedule"
    error: str = ""
    delay: float = 0.0


class Interrupter:
    """Lets the monitor thread interrupt the job running on the main thread."""

    def __init__(self) -> None:
        self._main = threading.main_thread().ident
        self.armed = False
        self.reason: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGALRM, self._handler)

    def _handler(self, signum: int, frame: Any) -> None:
        # The one handler in dqueue that raises rather than set a flag: only an exception raised
        # on the main thread can stop the job's own code, and it fires only while a job runs.
        if self.armed and self.reason:
            raise JobInterrupted(self.reason)

    def interrupt(self, reason: str) -> None:
        self.reason = reason
        assert self._main is not None
        signal.pthread_kill(self._main, signal.SIGALRM)


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


@functools.lru_cache(maxsize=1024)
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


def run(jobdef: jobs.JobDef, args: dict[str, Any], interrupter: Interrupter) -> Outcome:
    """Call the job function with its args; every way it can end becomes an Outcome."""
    try:
        _signature(jobdef.func).bind(**args)
    except TypeError as exc:
        return Outcome("failed", f"HandlerError: args do not fit {jobdef.name}: {exc}")
    interrupter.reason = None
    interrupter.armed = True
    try:
        jobdef.func(**args)
    except JobInterrupted as exc:
        interrupter.armed = False
        if exc.reason == "shutdown":
            return Outcome("release", "interrupted by shutdown")
        return Outcome("retry", f"JobTimeout: ran longer than max_run_time\n{describe(exc)}")
    except Reschedule as exc:
        interrupter.armed = False
        return Outcome("reschedule", str(exc), exc.delay)
    except PermanentError as exc:
        interrupter.armed = False
        return Outcome("failed", describe(exc))
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # sys.exit() or a KeyboardInterrupt raised by a job's own code is that job's failure:
        # it must not end the worker and strand its batch-mates (issue 7).  A real SIGINT never
        # gets here: the worker's handler only sets a flag.
        interrupter.armed = False
        return Outcome("retry", describe(exc))
    finally:
        interrupter.armed = False
    return Outcome("done")
