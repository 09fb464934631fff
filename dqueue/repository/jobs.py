"""The deposit job ``repo.deposit`` and the completion check ``repo.check``.

``repo.deposit`` with ``{"resource_id": N, "force": bool}`` (enqueued by ``submit``), in the order
a run meets it, every decision taken under the version's row lock (``store.lock_resource``):

1. The latest row is ``processing`` written by this very job: the worker running it was killed
   mid-deposit and the job came back.  The POST may have reached Merritt, so it is never sent
   again: the completion check is scheduled instead.
2. The version ever reached ``processing`` and this is not a ``--force`` re-send: a duplicate.
   Nothing is sent; ``repo.duplicate_dropped`` is logged (and a stray ``enqueued`` row on top is
   answered by a row giving back the state it hid).  A ``--force`` job does not re-send a version
   whose deposit is still in flight (its latest row ``processing``) either.
3. ``hold-submissions.txt`` is set: ``rejected_shutting_down`` with this host's name; nothing sent.
4. The package is built (files staged, manifest written); a refusal (a setting missing, a local
   file gone) is ``errored`` with the reason, and the job fails with it at once.
5. ``processing`` is committed, *then* the deposit is POSTed: a kill during the POST finds
   ``processing`` (step 1), never a state that would send it twice.
6. Merritt's answer: accepted → a submission log and ``repo.check`` after ``check_interval``;
   refused (4xx) or unreachable after the HTTP layer's tries (5xx, connection refused) →
   ``errored`` with the answer in the submission log, and the job fails; no answer (a read
   timeout, a dropped connection: it may have arrived) → the completion check decides.

``repo.check`` with ``{"resource_id": N}``: while the latest row is ``processing``, ask Merritt's
``local_id_search`` for the DOI.  This version's number among ``versions[]`` → ``completed``, the
download URI ``{base}/d/<ark>`` stored (its ARK is the next version's ``primaryIdentifier``) and
the staging folder removed.  Otherwise the job reschedules itself every ``check_interval`` (no
worker sleeps, no attempt is spent) until ``check_limit`` has passed since the ``processing`` row,
then ``errored`` with the reason.  Merritt unreachable counts as not found yet.  After a forced
re-send (``above`` in its args) any version numbered above the newest Merritt held before counts:
Merritt numbers a version it receives again anew.
"""
from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from .. import flags, http, jobs, masking
from ..client import Client
from ..errors import PermanentError, Reschedule
from ..stash import resources
from ..store.queue import transaction
from . import package, store
from .client import DepositRequest, DepositUncertain, MerrittClient, version_numbers
from .hold import HOLD_SUBMISSIONS
from .settings import MerrittSettings
from .states import RepoState
from .submit import DEPOSIT_JOB, DEPOSIT_QUEUE

log = logging.getLogger("dqueue.repository")
CHECK_JOB = "repo.check"
CHECK_QUEUE = "submission_check"  # Dryad's (Sidekiq) name for its CheckStatusJob


class Step(enum.Enum):
    SEND = "send"
    CHECK = "check"  # recovered after a kill mid-deposit: find out what Merritt made of it
    DUPLICATE = "duplicate"
    HOLD = "hold"
    GONE = "gone"  # no such resource


@dataclass(frozen=True)
class Decision:
    step: Step
    note: str = ""
    restore: RepoState | None = None  # a duplicate that hid the real state under a stray row


def decide(conn: Connection, resource_id: int, job_id: int, force: bool, held: bool) -> Decision:
    """What this run of the deposit job does; the caller holds the version's lock."""
    latest = store.latest(conn, resource_id)
    if latest is not None and latest.state is RepoState.PROCESSING:
        if latest.job_id == job_id:
            return Decision(Step.CHECK, "this job's deposit was interrupted after processing was recorded")
        return Decision(Step.DUPLICATE, "a deposit of this version is in flight (latest state processing)")
    if store.ever_sent(conn, resource_id) and not force:
        restore = None
        if latest is not None and latest.state in (RepoState.ENQUEUED, RepoState.REJECTED_SHUTTING_DOWN):
            restore = _state_before_stray(conn, resource_id)
        return Decision(Step.DUPLICATE, "this version was sent already (use --force to send it again)", restore)
    if held:
        return Decision(Step.HOLD, f"{HOLD_SUBMISSIONS} is set")
    return Decision(Step.SEND)


def _state_before_stray(conn: Connection, resource_id: int) -> RepoState | None:
    for row in reversed(store.history(conn, resource_id)):
        if row.state not in (None, RepoState.ENQUEUED, RepoState.REJECTED_SHUTTING_DOWN):
            return row.state
    return None


# -- the deposit ---------------------------------------------------------------------------------

@jobs.job(DEPOSIT_JOB, queue=DEPOSIT_QUEUE, max_attempts=3, max_run_time=6 * 3600)
def deposit(resource_id: int, force: bool = False) -> None:
    """Deposit one dataset version in Merritt (see the module docstring for the steps)."""
    try:
        _deposit(int(resource_id), bool(force))
    except (Reschedule, PermanentError):
        raise
    except Exception as exc:  # what reaches delayed_jobs.last_error must not hold the password
        raise RuntimeError(masking.mask(f"{type(exc).__name__}: {exc}")) from None


def _deposit(resource_id: int, force: bool) -> None:
    ctx = jobs.current()
    s, engine = ctx.settings, ctx.engine
    m: MerrittSettings = s.merritt
    masking.add_secret(m.password)
    ids = f"resource={resource_id} job={ctx.job_id}"
    with transaction(engine) as conn:
        if not store.lock_resource(conn, resource_id):
            raise PermanentError(f"no resource {resource_id}")
        decision = decide(conn, resource_id, ctx.job_id, force, flags.is_set(s.flag_dir, HOLD_SUBMISSIONS))
        if decision.step is Step.HOLD:
            store.append_state(conn, resource_id, RepoState.REJECTED_SHUTTING_DOWN, s.hostname, ctx.job_id)
        elif decision.step is Step.DUPLICATE and decision.restore is not None:
            store.append_state(conn, resource_id, decision.restore, s.hostname, ctx.job_id)
            store.add_log(conn, resource_id, f"repo.deposit job {ctx.job_id}: duplicate dropped",
                          f"{decision.note}; state {decision.restore.value} given back")
    if decision.step is Step.HOLD:
        log.info("repo.rejected_shutting_down %s host=%s: %s", ids, s.hostname, decision.note)
        return
    if decision.step is Step.DUPLICATE:
        log.warning("repo.duplicate_dropped %s: %s", ids, decision.note)
        return
    if decision.step is Step.CHECK:
        log.warning("repo.recovered %s: %s; checking Merritt instead of sending again", ids, decision.note)
        _logged(engine, resource_id, f"repo.deposit job {ctx.job_id} ran again (its worker ended mid-deposit)",
                "not sent again: the first POST may have reached Merritt; the completion check decides")
        _schedule_check(engine, s, resource_id, delay=0.0)
        return
    resource = resources.get(engine, resource_id)
    assert resource is not None, "the row was locked above"
    try:
        missing = m.missing()
        if missing:
            raise package.PackageRefused(f"the [merritt] settings lack {', '.join(missing)}")
        pkg = package.build(resource, m)
        request = DepositRequest(pkg.manifest, pkg.manifest_name, package.local_id(resource),
                                 _primary_id(engine, resource_id))
    except package.PackageRefused as exc:
        _errored(engine, s, resource_id, ctx.job_id, f"repo.deposit job {ctx.job_id}: not sent",
                 f"refused before sending: {exc}")
        raise PermanentError(f"resource {resource_id} not deposited: {exc}") from None
    above = _versions_held(engine, s, resource_id, ctx.job_id, request) if force else None
    with transaction(engine) as conn:  # again under the lock: another job may have sent it meanwhile
        store.lock_resource(conn, resource_id)
        again = decide(conn, resource_id, ctx.job_id, force, held=False)
        if again.step is Step.SEND:
            store.append_state(conn, resource_id, RepoState.PROCESSING, s.hostname, ctx.job_id)
    if again.step is not Step.SEND:
        log.warning("repo.duplicate_dropped %s: %s", ids, again.note)
        return
    log.info("repo.deposit %s version=%s files=%s%s%s", ids, resource.version, len(pkg.entries),
             f" primary={request.primary_id}" if request.primary_id else "", " (forced)" if force else "")
    _send(engine, s, resource_id, ctx.job_id, request, force, above)


def _versions_held(engine: Engine, s: Any, resource_id: int, job_id: int, request: DepositRequest) -> int:
    """Before a forced re-send: the newest version Merritt holds of the dataset.  A version Merritt
    already holds gets a new number when sent again, so the check then waits for a number above
    this one instead of the version's own."""
    m: MerrittSettings = s.merritt
    try:
        with MerrittClient(m, pace=_pacer(engine, m)) as client:
            info = client.search(request.local_id)
    except http.Rejected as exc:
        _errored(engine, s, resource_id, job_id, f"GET local_id_search before a forced re-send (job {job_id})",
                 f"failed: {exc}")
        raise PermanentError(f"resource {resource_id}: Merritt refused the search: {exc}") from None
    except http.HttpError as exc:  # nothing sent yet: try again later
        raise Reschedule(m.check_interval, f"Merritt did not answer before a forced re-send: {exc}") from None
    return max(version_numbers(info), default=0)


def _pacer(engine: Engine, m: MerrittSettings) -> http.Pacer | None:
    """Requests to Merritt spaced ``request_interval`` apart across every worker and host."""
    return http.Pacer(engine, "merritt", m.request_interval) if m.request_interval > 0 else None


def _primary_id(engine: Engine, resource_id: int) -> str | None:
    with transaction(engine) as conn:
        return store.previous_ark(conn, resource_id)


def _send(engine: Engine, s: Any, resource_id: int, job_id: int, request: DepositRequest, force: bool,
          above: int | None) -> None:
    m: MerrittSettings = s.merritt
    lines: list[str] = []
    described = _describe(m, request, job_id, force)
    with MerrittClient(m, pace=_pacer(engine, m), log=lines.append) as client:
        try:
            answer = client.deposit(request)
        except DepositUncertain as exc:
            _logged(engine, resource_id, described, _response(f"no answer (it may have arrived; checking "
                                                                f"local_id_search): {exc}", lines))
            log.warning("repo.deposit_uncertain resource=%s job=%s: %s", resource_id, job_id, exc)
            _schedule_check(engine, s, resource_id, delay=m.check_interval, above=above)
            return
        except http.HttpError as exc:
            _errored(engine, s, resource_id, job_id, described, _response(f"failed: {exc}", lines))
            how = "refused the deposit" if isinstance(exc, http.Rejected) else "could not take the deposit"
            raise PermanentError(f"resource {resource_id}: Merritt {how}: {exc}") from None
    _logged(engine, resource_id, described, _response(json.dumps(answer, sort_keys=True), lines))
    log.info("repo.accepted resource=%s job=%s batch=%s", resource_id, job_id,
             (answer.get("bat:batchState") or {}).get("bat:batchID") if isinstance(answer, dict) else None)
    _schedule_check(engine, s, resource_id, delay=m.check_interval, above=above)


def _describe(m: MerrittSettings, request: DepositRequest, job_id: int, force: bool) -> str:
    fields = "\n".join(f"{k}={v}" for k, v in request.fields(m).items())
    forced = " (forced re-send: dqueue repo submit --force)" if force else ""
    return masking.mask(f"POST {m.base_url.rstrip('/')}/object/update by job {job_id}{forced}\n{fields}\n"
                        f"file={request.manifest_name}:\n{request.manifest}", m.password)


def _response(summary: str, lines: list[str]) -> str:
    return masking.mask(summary + ("\n\n" + "\n".join(lines) if lines else ""))


def _logged(engine: Engine, resource_id: int, request: str, response: str) -> None:
    with transaction(engine) as conn:
        store.add_log(conn, resource_id, request, response)


def _errored(engine: Engine, s: Any, resource_id: int, job_id: int, request: str, response: str) -> None:
    with transaction(engine) as conn:
        store.lock_resource(conn, resource_id)
        store.add_log(conn, resource_id, request, response)
        store.append_state(conn, resource_id, RepoState.ERRORED, s.hostname, job_id)
    log.error("repo.errored resource=%s job=%s: %s", resource_id, job_id, response.splitlines()[0][:500])


def _schedule_check(engine: Engine, s: Any, resource_id: int, delay: float, above: int | None = None) -> int:
    args: dict[str, int] = {"resource_id": resource_id}
    if above is not None:
        args["above"] = above
    with transaction(engine) as conn:
        run_at = store.clock(conn, delay)
        job_id = Client(s, engine=engine).enqueue(CHECK_JOB, args, run_at=run_at, connection=conn)
    log.info("repo.check_scheduled resource=%s check_job=%s in=%.0fs", resource_id, job_id, delay)
    return job_id


# -- the completion check --------------------------------------------------------------------------

@jobs.job(CHECK_JOB, queue=CHECK_QUEUE, max_attempts=5, max_run_time=3600)
def check(resource_id: int, above: int | None = None) -> None:
    """Is this version in Merritt yet?  ``completed``, or again in ``check_interval``, or
    ``errored`` after ``check_limit`` (see the module docstring).  ``above``: after a forced
    re-send, any version numbered above it (Merritt numbers a re-sent version anew)."""
    try:
        _check(int(resource_id), None if above is None else int(above))
    except (Reschedule, PermanentError):
        raise
    except Exception as exc:
        raise RuntimeError(masking.mask(f"{type(exc).__name__}: {exc}")) from None


def _check(resource_id: int, above: int | None) -> None:
    ctx = jobs.current()
    s, engine = ctx.settings, ctx.engine
    m: MerrittSettings = s.merritt
    masking.add_secret(m.password)
    with transaction(engine) as conn:
        latest = store.latest(conn, resource_id)
        if latest is None or latest.state is not RepoState.PROCESSING:
            log.info("repo.check.done resource=%s job=%s: the state is %s now; nothing to check", resource_id,
                     ctx.job_id, latest.state.value if latest and latest.state else None)
            return
        waited = store.age(conn, latest.id)
    resource = resources.get(engine, resource_id)
    assert resource is not None
    local = package.local_id(resource)
    lines: list[str] = []
    with MerrittClient(m, pace=_pacer(engine, m), log=lines.append) as client:
        url = client.search_url(local)
        try:
            info = client.search(local)
        except http.HttpError as exc:
            info, problem = {}, f"Merritt did not answer the check: {exc}"
            log.warning("repo.check.unanswered resource=%s job=%s: %s", resource_id, ctx.job_id, exc)
        else:
            problem = ""
    numbers = version_numbers(info)
    seen = max(numbers, default=0) > above if above is not None else resource.version in numbers
    if seen and info.get("ark"):
        _completed(engine, s, resource_id, latest.id, ctx.job_id, url, str(info["ark"]), info)
        return
    if waited >= m.check_limit:
        reason = (f"version {resource.version} of {local} not in Merritt {waited:.0f} s after it was sent "
                  f"(merritt_check_limit {m.check_limit:.0f} s); last answer: "
                  f"{problem or json.dumps(info, sort_keys=True)[:2000]}")
        with transaction(engine) as conn:
            store.lock_resource(conn, resource_id)
            now = store.latest(conn, resource_id)
            if now is not None and now.id == latest.id:
                store.add_log(conn, resource_id, f"GET {url} (completion check, job {ctx.job_id})",
                              masking.mask(reason + ("\n\n" + "\n".join(lines) if lines else ""), m.password))
                store.append_state(conn, resource_id, RepoState.ERRORED, s.hostname, ctx.job_id)
        log.error("repo.errored resource=%s job=%s: %s", resource_id, ctx.job_id, reason[:500])
        return
    raise Reschedule(m.check_interval, f"version {resource.version} of {local} not in Merritt yet")


def _completed(engine: Engine, s: Any, resource_id: int, state_id: int, job_id: int, url: str, ark: str,
               info: dict[str, Any]) -> None:
    m: MerrittSettings = s.merritt
    uri = store.download_uri_for(m.base_url, ark)
    with transaction(engine) as conn:
        store.lock_resource(conn, resource_id)
        now = store.latest(conn, resource_id)
        if now is None or now.id != state_id:
            return  # another check got there first
        store.set_download_uri(conn, resource_id, uri)
        store.append_state(conn, resource_id, RepoState.COMPLETED, s.hostname, job_id)
        versions = sorted(version_numbers(info))
        store.add_log(conn, resource_id, f"GET {url} (completion check, job {job_id})",
                      masking.mask(f"found: ark {ark}, versions {versions}; download_uri {uri}", m.password))
    package.remove_staged(m, resource_id)
    log.info("repo.completed resource=%s job=%s ark=%s", resource_id, job_id, ark)
