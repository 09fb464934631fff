"""Jobs the tests run through the real worker (``--import tests.sample_jobs``).

Each job appends lines to a file named in its args, so a test can see exactly what ran, how
often, and in which process.
"""
from __future__ import annotations

import os
import signal
import time

import dqueue
from dqueue import flags


def _append(path: str, line: str) -> None:
    # One short write with O_APPEND is atomic between processes, so lines never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@dqueue.job("t.record")
def record(path: str, token: str) -> None:
    _append(path, f"{token} {os.getpid()}")


@dqueue.job("t.slow_record")
def slow_record(path: str, token: str, seconds: float) -> None:
    _append(path, f"start {token} {os.getpid()}")
    time.sleep(seconds)
    _append(path, f"end {token} {os.getpid()}")


@dqueue.job("t.fail", max_attempts=3, backoff_base=0.05, backoff_max=0.2)
def fail(path: str) -> None:
    _append(path, "try")
    raise RuntimeError("this job always fails")


@dqueue.job("t.permanent")
def permanent(path: str) -> None:
    _append(path, "try")
    raise dqueue.PermanentError("bad input that a retry will not fix")


@dqueue.job("t.hang", max_run_time=1.0, max_attempts=2, backoff_base=0.05, backoff_max=0.1)
def hang(path: str) -> None:
    _append(path, "start")
    time.sleep(3600)


@dqueue.job("t.stubborn", max_run_time=0.5, max_attempts=1)
def stubborn(path: str) -> None:
    """Swallows even BaseException: only ending the process stops it."""
    _append(path, "start")
    _swallow_interruptions(path)


@dqueue.job("t.suicide", max_attempts=2)
def suicide(path: str) -> None:
    """Kills its own worker, like an out-of-memory kill would."""
    _append(path, f"start {os.getpid()}")
    os.kill(os.getpid(), signal.SIGKILL)


@dqueue.job("t.catch_all", max_run_time=1.0, max_attempts=1)
def catch_all(path: str) -> None:
    """A job whose own 'except Exception' must not swallow the timeout (delayed_job#1180)."""
    try:
        time.sleep(3600)
    except Exception:  # noqa: BLE001
        _append(path, "swallowed")


@dqueue.job("t.later")
def later(path: str, seconds: float) -> None:
    _append(path, "ran")
    if not os.path.exists(path + ".ok"):
        open(path + ".ok", "w").close()
        raise dqueue.Reschedule(seconds, "not my turn yet")


@flags.on_restart("sample parked jobs")
def _restart(engine: object) -> str:
    return "re-enqueued 0 (a test hook)"


@flags.on_status("sample section")
def _status(engine: object) -> dict[str, object]:
    return {"parked": 0}


# -- poison jobs: each ends its worker process its own way (issue 7, point 2) ----------------------
@dqueue.job("t.attempt")
def attempt(path: str, token: str) -> None:
    """Records which attempt ran: a batch-mate of a poison job must run on its first."""
    from dqueue import jobs
    _append(path, f"{token} {jobs.current().attempts} {os.getpid()}")


@dqueue.job("t.exit0", max_attempts=2)
def exit0(path: str) -> None:
    _append(path, f"start {os.getpid()}")
    os._exit(0)


@dqueue.job("t.sys_exit", max_attempts=2, backoff_base=0.05, backoff_max=0.1)
def sys_exit(path: str) -> None:
    _append(path, f"start {os.getpid()}")
    raise SystemExit(3)


@dqueue.job("t.keyboard_interrupt", max_attempts=2, backoff_base=0.05, backoff_max=0.1)
def keyboard_interrupt(path: str) -> None:
    _append(path, f"start {os.getpid()}")
    raise KeyboardInterrupt


@dqueue.job("t.segfault", max_attempts=8)  # more deaths than the supervisor once allowed
def segfault(path: str) -> None:
    import ctypes
    _append(path, f"start {os.getpid()}")
    ctypes.string_at(0)


@dqueue.job("t.spawn")
def spawn(path: str, seconds: float, child_seconds: float = 600) -> None:
    """Leaves a grandchild running (its parent shell exits at once), then works for ``seconds``."""
    import subprocess
    subprocess.run(["sh", "-c", f"sleep {child_seconds} >/dev/null 2>&1 & echo $! >> {path}"], check=True)
    _append(path, f"started {os.getpid()}")
    time.sleep(seconds)


@dqueue.job("t.bloat")
def bloat(path: str, mib: int) -> None:
    """Keeps ``mib`` MiB alive in the worker after it returns, like a leaking cache."""
    _HOARD.append(bytearray(mib * 1024 * 1024))
    _append(path, f"ran {os.getpid()}")


_HOARD: list[bytearray] = []


@dqueue.job("t.deaf", max_attempts=3)
def deaf(path: str) -> None:
    """Swallows its interruption, with no max_run_time of its own to end it sooner."""
    _append(path, f"start {os.getpid()}")
    _swallow_interruptions(path)


def _swallow_interruptions(path: str) -> None:
    """Sleep for an hour, noting and swallowing every exception, even BaseException."""
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except BaseException:  # noqa: BLE001 - on purpose, to test the last resort
            _append(path, "swallowed")
