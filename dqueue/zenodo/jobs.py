"""The Zenodo copy job, sending a resource, and the copies' part in ``long_jobs``.

One job, ``zenodo.copy`` with ``{"copy_id": N}``, runs every copy type (Dryad's three job
classes differ only in the copier they call).  Its life, in the order a run meets it:

1. ``defer_jobs.txt`` set when its turn comes: the copy becomes ``deferred``; no Zenodo call.
2. ``zenodo_copies.begin`` decides under the dataset's lock: an earlier version unfinished means
   *wait* (the copy stays ``enqueued``, ``note`` names what it waits for, the job is rescheduled
   without using an attempt, and the predecessor's finish makes it due at once).
3. The copy runs; ``retries`` counted one more start.  Success: ``finished``.  Failure: ``error``
   with the cause and traceback in ``error_info``; while ``retries`` < ``zenodo_max_retries``
   (3) the same job starts it again after a backoff (10 min, then 1 h by default), after which
   the row stays ``error``.  An operator who sets ``retries`` to 3 or more stops that.
"""
from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

from sqlalchemy import Engine

from .. import flags, http, jobs, masking, owned
from ..backoff import Backoff
from ..errors import Reschedule
from ..stash import resources
from ..store.queue import NewJob
from . import store as zenodo_copies
from .copier import Copier, CopyRefused
from .http import ZenodoClient, ZenodoRateLimited
from .schema import CopyState

log = logging.getLogger("dqueue.zenodo")
JOB = "zenodo.copy"
QUEUES = {"data": "zenodo_copy", "software": "zenodo_software", "supp": "zenodo_supp"}  # Dryad's names
PRIORITIES = {"data": 10, "software": -10, "supp": -10}  # staged software/supp go before data copies
LOG_ENTRY_MAX = 4000  # characters of one request or response kept in error_info
DEFER_JOBS = flags.register_marker("defer_jobs.txt", "zenodo",
                                   "Zenodo copies become 'deferred' at their turn; running ones finish")


def job_for(copy_id: int, copy_type: str) -> NewJob:
    kind = zenodo_copies.base_type(copy_type)
    return NewJob(jobs.encode_handler(JOB, {"copy_id": copy_id}), QUEUES[kind], PRIORITIES[kind])


class SendRefused(ValueError):
    """The resource cannot be sent as asked (no files of that kind, nothing staged to publish)."""


def send(engine: Engine, resource_id: int, kind: str = "data", publish: bool = False) -> zenodo_copies.Sent:
    """Create the copy row of ``kind`` (``*_publish`` with ``publish``) and its job, at most once."""
    if kind not in QUEUES:
        raise SendRefused(f"unknown copy type {kind!r}: data, software or supp")
    if publish and kind == "data":
        raise SendRefused("data copies are published as part of the copy: --publish is for software and supp")
    resource = resources.get(engine, resource_id)
    if resource is None:
        raise SendRefused(f"no resource {resource_id} (register it with: dqueue resource add MANIFEST.json)")
    copy_type = f"{kind}_publish" if publish else kind
    if not resource.files_of(kind, present=False):
        if not publish:
            raise SendRefused(f"resource {resource_id} has no {kind} files: nothing to send")
        # A publish copy publishes what the staging copy of this version put in a deposition: with
        # no files of the kind and no staged deposition, it could only fail, three times.
        staged = [c for c in zenodo_copies.find(engine, resource_id=resource_id)
                  if c.copy_type == kind and c.deposition_id is not None]
        if not staged:
            raise SendRefused(f"resource {resource_id} has no {kind} files and no staged {kind} deposition: "
                              f"nothing to publish")
    return zenodo_copies.send(engine, resource_id, copy_type, job_for)


def _client(settings: Any, engine: Engine, copy_id: int) -> ZenodoClient:
    def record(line: str) -> None:
        text = masking.mask(line)
        if len(text) > LOG_ENTRY_MAX:
            text = text[:LOG_ENTRY_MAX] + f" [... {len(text) - LOG_ENTRY_MAX} characters cut]"
        zenodo_copies.append_log(engine, copy_id, text + "\n")

    z = settings.zenodo  # the [zenodo] section (zenodo/settings.py)
    return ZenodoClient(z.url, z.token, timeout=z.timeouts, attempts=z.http_attempts, backoff=z.http_backoff,
                        pace=http.Pacer(engine, "zenodo", z.request_interval) if z.request_interval > 0 else None,
                        log=record)


def restart_policy(settings: Any) -> Backoff:
    """A copy's automatic starts: zenodo_retry_delay (10 min), then six times that (1 h), exactly."""
    return Backoff(attempts=max(1, settings.zenodo_max_retries), base=settings.zenodo_retry_delay,
                   factor=6, max=float("inf"), jitter=0)


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@jobs.job(JOB, queue="zenodo_copy", max_attempts=5, max_run_time=24 * 3600)
def copy_to_zenodo(copy_id: int) -> None:
    """Copy one dataset version to Zenodo (see the module docstring for the states)."""
    try:
        _copy(copy_id)
    except Reschedule:
        raise
    except Exception as exc:
        # What reaches delayed_jobs.last_error must not hold the token: mask the whole traceback.
        raise RuntimeError(masking.mask("".join(traceback.format_exception(exc)))) from None


def _copy(copy_id: int) -> None:
    ctx = jobs.current()
    s, engine = ctx.settings, ctx.engine
    masking.add_secret(s.zenodo_token)
    defer = flags.is_set(s.flag_dir, DEFER_JOBS)
    decision = zenodo_copies.begin(engine, copy_id, ctx.job_id, defer=defer, max_retries=s.zenodo_max_retries)
    ids = f"copy={copy_id} job={ctx.job_id}"
    if not owned.follow(decision.action, decision.note, recheck=s.zenodo_recheck, log=log, event="zenodo", ids=ids):
        return
    copy = decision.copy
    assert copy is not None
    resource = resources.get(engine, copy.resource_id)
    assert resource is not None, "copies reference resources, which are never deleted"
    log.info("zenodo.start %s type=%s resource=%s version=%s start=%s%s", ids, copy.copy_type,
             copy.resource_id, copy.version, copy.retries, " (resuming)" if decision.resumed else "")
    zenodo_copies.append_log(engine, copy.id, f"{_stamp()} start {copy.retries} of the {copy.copy_type} copy "
                             f"of resource {copy.resource_id} (job {ctx.job_id})\n")
    try:
        if not s.zenodo_token:
            raise CopyRefused("no Zenodo access token is configured (zenodo_token in the config "
                              "file, or DQUEUE_ZENODO_TOKEN)")
        with _client(s, engine, copy.id) as client:
            note = Copier(client, engine, s, copy, resource, ctx.job_id, lambda text: zenodo_copies.append_log(
                engine, copy.id, f"{_stamp()} {masking.mask(text)}\n")).run()
    except ZenodoRateLimited as exc:
        note = f"rate limited by Zenodo: starting again in {exc.wait:.0f} s"
        zenodo_copies.requeue(engine, copy.id, ctx.job_id, note)
        raise Reschedule(exc.wait, note) from None
    except CopyRefused as exc:
        _failed(engine, copy, ctx.job_id, exc, f"refused: {exc}")
        return
    except zenodo_copies.CopyLost as exc:
        log.warning("zenodo.lost %s: %s; stopping without writing", ids, exc)
        return
    except Exception as exc:
        if copy.retries < s.zenodo_max_retries:
            delay = restart_policy(s).delay(copy.retries)
            _failed(engine, copy, ctx.job_id, exc, f"error: start {copy.retries + 1} of "
                    f"{s.zenodo_max_retries} comes automatically in {delay:.0f} s")
            raise Reschedule(delay, f"copy {copy.id} failed; automatic start {copy.retries + 1}") from None
        _failed(engine, copy, ctx.job_id, exc, f"error after {copy.retries} starts: no automatic retry "
                "left (to send it again: state='deferred', retries=0, then long_jobs restart)")
        return
    try:
        zenodo_copies.finish(engine, copy.id, ctx.job_id, note)
    except zenodo_copies.CopyLost as exc:
        log.warning("zenodo.lost %s: %s; its new owner decides its state", ids, exc)
        return
    zenodo_copies.append_log(engine, copy.id, f"{_stamp()} finished\n")
    log.info("zenodo.finished %s type=%s resource=%s", ids, copy.copy_type, copy.resource_id)


def _failed(engine: Engine, copy: zenodo_copies.Copy, job_id: int, exc: Exception, note: str) -> None:
    text = masking.mask("".join(traceback.format_exception(exc)))
    zenodo_copies.append_log(engine, copy.id, f"{_stamp()} Zenodo final failure: {type(exc).__name__}\n"
                             f"{masking.mask(str(exc))}\n{text}\n")
    if zenodo_copies.fail(engine, copy.id, job_id, note):
        log.error("zenodo.error copy=%s job=%s start=%s: %s", copy.id, job_id, copy.retries,
                  masking.mask(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__)


# -- long_jobs ---------------------------------------------------------------------------------

@flags.on_restart("zenodo")
def restart_deferred(engine: Engine) -> str:
    sent = zenodo_copies.enqueue_deferred(engine, job_for)
    if not sent:
        return "no deferred copies"
    listed = ", ".join(f"{c.id} ({c.copy_type} v{c.version})" for c in sent[:20])
    more = f" and {len(sent) - 20} more" if len(sent) > 20 else ""
    return f"re-enqueued {len(sent)} deferred copies in version order: {listed}{more}"


@flags.on_status("zenodo")
def status(engine: Engine) -> dict[str, object]:
    running = zenodo_copies.find(engine, state=CopyState.REPLICATING, limit=100)
    return {"copies": zenodo_copies.counts(engine),
            "replicating": [{"id": c.id, "copy_type": c.copy_type, "resource_id": c.resource_id,
                             "version": c.version, "retries": c.retries, "job_id": c.job_id,
                             "updated_at": c.updated_at} for c in running]}
