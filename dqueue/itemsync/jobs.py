"""The job ``itemsync.update`` with ``{"project_id": N}``: sync one item, as a webhook asked.

It runs ``item.sync_one`` without waiting for the item's lock: when another update holds it, the
job is rescheduled (``errors.Reschedule``: no attempt spent) and comes back after BUSY_RECHECK; a
holder that died loses the lock at its lease's end.  Once it holds the lock, and before it reads
GitLab, it clears the item's waiting-update marker (webhook.py).  A refusal by GitLab (4xx) or
missing settings fail the job for good; a transient failure is retried by the worker's policy.
"""
from __future__ import annotations

import logging

from .. import http, jobs, masking
from ..errors import PermanentError, Reschedule
from . import item, store, sync  # noqa: F401 - sync registers the batch kind itemSynchronizationJob
from .webhook import UPDATE_JOB

log = logging.getLogger("dqueue.itemsync")
UPDATE_QUEUE = "itemsync"
BUSY_RECHECK = 2.0  # seconds before a job that found the item locked looks again


@jobs.job(UPDATE_JOB, queue=UPDATE_QUEUE, max_attempts=5)
def update(project_id: int) -> None:
    """Sync one item (its webhook, its head commit) under its lock."""
    ctx = jobs.current()
    pid = int(project_id)
    gl = ctx.settings.gitlab
    masking.add_secret(gl.token)
    masking.add_secret(gl.webhook_secret)
    try:
        result = item.sync_one(ctx.engine, ctx.settings, pid, wait=0,
                               on_locked=lambda: store.clear_pending(ctx.engine, pid, ctx.job_id))
    except item.ItemBusy as exc:
        log.info("itemsync.update.busy project=%d job=%d %s", pid, ctx.job_id, exc)
        raise Reschedule(BUSY_RECHECK, str(exc)) from None
    except (item.NotConfigured, http.Rejected) as exc:
        raise PermanentError(masking.mask(f"{type(exc).__name__}: {exc}")) from None
    except Exception as exc:  # what reaches delayed_jobs.last_error must not hold the token
        raise RuntimeError(masking.mask(f"{type(exc).__name__}: {exc}")) from None
    log.info("itemsync.update project=%d job=%d %s", pid, ctx.job_id, result.message())
