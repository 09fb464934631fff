"""Submitting a dataset version to the repository, and re-enqueueing held submissions.

``submit`` decides, under the version's ``stash_engine_resources`` row lock (so that two hosts,
or a submit and a restart, cannot both enqueue it), in this order:

1. no such resource: ``SubmitRefused``;
2. a job for it is still pending or running: nothing written (a second submit never sends twice);
3. the version was sent already (``processing`` or later) and ``force`` is not given: the
   duplicate is dropped and logged (``repo.duplicate_dropped``), nothing written (dryad.md 8.5);
4. ``hold-submissions.txt`` is set: a ``rejected_shutting_down`` row with this host's name,
   nothing enqueued (``long_jobs restart`` re-enqueues it);
5. otherwise an ``enqueued`` row with this host's name and the ``repo.deposit`` job, committed
   together.  With ``force`` a ``submission_logs`` row says who asked for the re-send, so the
   history shows why a sent version is enqueued again.

``requeue_held`` is the repository's part of ``long_jobs restart``: each held resource (latest row
``rejected_shutting_down``) of the hosts asked for, oldest first, gets a new ``enqueued`` row under
this host's name and its job, one transaction per resource; an item whose latest row is no longer
held (a second restart, another host's restart) is skipped.
"""
from __future__ import annotations

import enum
import getpass
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from .. import jobs
from ..store import queue
from ..store.queue import NewJob, retry_on_deadlock, transaction
from . import hold
from . import store as repo
from .states import RepoState

log = logging.getLogger("dqueue.repository")

DEPOSIT_JOB = "repo.deposit"  # args {"resource_id": int, "force": bool}; registered in jobs.py
DEPOSIT_QUEUE = "submission"  # Dryad's (Sidekiq) queue name for repository submissions
DEPOSIT_PRIORITY = 0


class SubmitRefused(ValueError):
    """The submit cannot be done as asked (no such resource); the message says why."""


class Outcome(str, enum.Enum):
    ENQUEUED = "enqueued"  # an enqueued row and its job were committed
    HELD = "held"  # hold-submissions.txt: a rejected_shutting_down row, nothing enqueued
    DUPLICATE_DROPPED = "duplicate_dropped"  # sent already and no --force: nothing written
    ALREADY_PENDING = "already_pending"  # a job for it is pending or running: nothing written

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SubmitResult:
    resource_id: int
    outcome: Outcome
    message: str  # one line for the operator
    hostname: str
    forced: bool = False
    state_id: int | None = None  # the row this call wrote, if any
    job_id: int | None = None  # the job this call enqueued, or the pending one it found
    state: RepoState | None = None  # the resource's state after the call

    def as_dict(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "outcome": self.outcome.value, "message": self.message,
                "hostname": self.hostname, "forced": self.forced, "state_id": self.state_id,
                "job_id": self.job_id, "state": self.state.value if self.state else None}


def deposit_job(resource_id: int, force: bool) -> NewJob:
    return NewJob(jobs.encode_handler(DEPOSIT_JOB, {"resource_id": resource_id, "force": force}),
                  DEPOSIT_QUEUE, DEPOSIT_PRIORITY)


def _requester(hostname: str) -> str:
    try:
        return f"{getpass.getuser()}@{hostname}"
    except Exception:  # no login name (a container without a passwd entry)
        return hostname


def submit(bind: Engine | Connection, resource_id: int, settings: Any, *, force: bool = False,
           hostname: str | None = None, requested_by: str | None = None) -> SubmitResult:
    """Submit one version (see the module docstring).  ``hostname`` defaults to
    ``settings.hostname`` (``DQUEUE_HOSTNAME``).  On a Connection already in a transaction the
    writes join it; otherwise this commits them in a transaction of its own."""
    host = hostname or settings.hostname
    held = hold.is_held(settings.flag_dir)
    if isinstance(bind, Connection) and bind.in_transaction():
        result = _submit(bind, resource_id, host, force, held, requested_by)
    else:
        def run() -> SubmitResult:
            with transaction(bind) as conn:
                return _submit(conn, resource_id, host, force, held, requested_by)
        result = retry_on_deadlock(run)
    _log(result)
    return result


def _submit(conn: Connection, resource_id: int, host: str, force: bool, held: bool,
            requested_by: str | None) -> SubmitResult:
    if not repo.lock_resource(conn, resource_id):
        raise SubmitRefused(f"no resource {resource_id} (register it with: dqueue resource add MANIFEST.json)")
    current = repo.latest(conn, resource_id)
    pending = _pending_job(conn, resource_id)
    if pending is not None:
        return SubmitResult(resource_id, Outcome.ALREADY_PENDING,
                            f"resource {resource_id} is {current.state if current else 'queued'} with job "
                            f"{pending} still pending or running: nothing enqueued", host, force,
                            job_id=pending, state=current.state if current else None)
    sent = repo.ever_sent(conn, resource_id)
    if sent and not force:
        return SubmitResult(resource_id, Outcome.DUPLICATE_DROPPED,
                            f"resource {resource_id} was sent to the repository already (latest state "
                            f"{current.state if current else '?'}): duplicate dropped, nothing enqueued; "
                            f"to send it again on purpose: dqueue repo submit {resource_id} --force",
                            host, force, state=current.state if current else None)
    if force:
        who = requested_by or _requester(host)
        repo.add_log(conn, resource_id, f"forced re-send requested by {who} on {host}"
                     + ("" if sent else " (never sent before)"), "")
    if held:
        state_id = repo.append_state(conn, resource_id, RepoState.REJECTED_SHUTTING_DOWN, host)
        return SubmitResult(resource_id, Outcome.HELD,
                            f"hold-submissions.txt is set: resource {resource_id} held on {host} "
                            f"(rejected_shutting_down); 'long_jobs restart' sends it", host, force,
                            state_id=state_id, state=RepoState.REJECTED_SHUTTING_DOWN)
    state_id, job_id = _enqueue(conn, resource_id, host, force)
    return SubmitResult(resource_id, Outcome.ENQUEUED,
                        f"enqueued resource {resource_id} on {host} as job {job_id}"
                        + (" (forced re-send)" if force else ""), host, force,
                        state_id=state_id, job_id=job_id, state=RepoState.ENQUEUED)


def _pending_job(conn: Connection, resource_id: int) -> int | None:
    """The job of the resource's newest enqueued row, if it is still pending or running."""
    for row in reversed(repo.history(conn, resource_id)):
        if row.job_id is not None:
            return row.job_id if repo.job_pending(conn, row) else None
    return None


def _enqueue(conn: Connection, resource_id: int, host: str, force: bool) -> tuple[int, int]:
    state_id = repo.append_state(conn, resource_id, RepoState.ENQUEUED, host)
    job_id = queue.enqueue(conn, deposit_job(resource_id, force))
    repo.set_job(conn, state_id, job_id)
    return state_id, job_id


def _log(result: SubmitResult) -> None:
    ids = f"resource={result.resource_id} host={result.hostname}"
    if result.outcome is Outcome.DUPLICATE_DROPPED:
        log.warning("repo.duplicate_dropped %s state=%s", ids, result.state)
    elif result.outcome is Outcome.ALREADY_PENDING:
        log.info("repo.already_pending %s job=%s", ids, result.job_id)
    elif result.outcome is Outcome.HELD:
        log.info("repo.held %s state_id=%s%s", ids, result.state_id, " forced" if result.forced else "")
    else:
        log.info("repo.enqueued %s job=%s%s", ids, result.job_id, " forced" if result.forced else "")
    if result.forced and result.outcome in (Outcome.ENQUEUED, Outcome.HELD):
        log.warning("repo.force_resend %s: re-send requested on purpose", ids)


# -- long_jobs restart ------------------------------------------------------------------------------

def requeue_held(engine: Engine, hostname: str, from_host: str | None) -> list[SubmitResult]:
    """Re-enqueue the held submissions of ``from_host`` (None: every host, and rows without one)
    under ``hostname``, oldest first, one transaction each.  A version held after it was sent
    was held by a forced re-send (a plain duplicate is dropped before the hold check), so its
    job is forced again."""
    with transaction(engine) as conn:
        waiting = repo.held(conn, from_host)
    done = []
    for resource_id in waiting:
        def run(rid: int = resource_id) -> SubmitResult | None:
            with transaction(engine) as conn:
                return _requeue_one(conn, rid, hostname, from_host)
        result = retry_on_deadlock(run)
        if result is not None:
            _log(result)
            done.append(result)
    return done


def _requeue_one(conn: Connection, resource_id: int, hostname: str, from_host: str | None) -> SubmitResult | None:
    repo.lock_resource(conn, resource_id)
    current = repo.latest(conn, resource_id)
    if current is None or current.state is not RepoState.REJECTED_SHUTTING_DOWN:
        return None  # re-enqueued meanwhile (a second restart, another host's)
    if from_host is not None and current.hostname != from_host:
        return None  # taken over by another host meanwhile
    force = repo.ever_sent(conn, resource_id)
    state_id, job_id = _enqueue(conn, resource_id, hostname, force)
    moved = f" (taken over from {current.hostname or 'no host'})" if current.hostname != hostname else ""
    return SubmitResult(resource_id, Outcome.ENQUEUED, f"re-enqueued resource {resource_id} on {hostname} as job "
                        f"{job_id}{moved}", hostname, force, state_id=state_id, job_id=job_id,
                        state=RepoState.ENQUEUED)
