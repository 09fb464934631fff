"""The full item sync: the batch kind ``itemSynchronizationJob`` (issue 9 point 4, reference A.3).

One step, ``itemSynchronizationStep``:

1. ``getting item bank ids from source control``: the group's projects are read page by page
   (``per_page``, explicit page numbers, until an empty page: never the total-count headers,
   which GitLab drops past 10,000 rows), each page's timing logged at debug level.
2. Each page's projects go to a bounded pool of threads as the page arrives, so the per-project
   requests overlap the listing (the client caps requests in flight and their rate, and one 429
   pauses them all).  Per project, skipping the ignore list: its hooks are read and the webhook
   added if none has exactly ``webhook_url`` (counted); its default branch's head is read and, only
   if it differs from the stored one, ingested under the item's lock (item.refresh).  Nothing is
   skipped on a hint such as ``last_activity_at`` (GitLab refreshes it at most hourly), and an
   unchanged item costs two requests and no database write.
3. ``retrieved N item bank ids from source control in S seconds`` when the listing ends; progress
   (done of total, rate, ETA) logged every few seconds and reported through ``ctx.progress``.
4. With ``delete_pass``: every stored item the listing did not name is looked up
   (``GET /projects/:id``); a 404 deletes its row (counted).
5. The exit message: ``Total item bank ids: N, number of items requiring project webhook: M,
   number of items updated: U, number of items deleted: D``.  A failure of one item does not stop
   the others; every failure is returned (message and traceback) and fails the execution.

A stop or abandon (``ctx.stop_requested()``) is checked by the coordinating thread between pages
and while items run; no new item starts after it, the ones in flight finish.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..batch.kinds import Result, StepContext, batch_job
from ..store.queue import transaction
from . import item, store

if TYPE_CHECKING:
    from .gitlab import GitLabClient, Project
    from .settings import GitLabSettings

JOB_NAME = "itemSynchronizationJob"
STEP_NAME = "itemSynchronizationStep"
LABEL = "Item Synchronization Process"
PROGRESS_EVERY = 5.0  # seconds between progress lines in the log
TRACEBACKS = 50  # failures reported with their traceback; later ones by message only
TICK = 0.1  # how often the coordinating thread looks at the items' progress and the stop flag


def summary(total: int, hooks: int, updated: int, deleted: int) -> str:
    return (f"Total item bank ids: {total}, number of items requiring project webhook: {hooks}, "
            f"number of items updated: {updated}, number of items deleted: {deleted}")


@dataclass
class Tally:
    """The counters the item threads add to (under ``lock``) and the coordinating thread reads."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    hooks_added: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def failure(self, what: str, exc: BaseException) -> None:
        text = f"{what}: {type(exc).__name__}: {exc}"
        with self.lock:
            self.failed += 1
            if len(self.errors) < TRACEBACKS:
                text += ": " + "".join(traceback.format_exception(exc)).rstrip()
            self.errors.append(text)


class Sync:
    """One run of the full sync (see the module docstring)."""

    def __init__(self, ctx: StepContext, client: "GitLabClient") -> None:
        self.ctx, self.client = ctx, client
        self.gl: GitLabSettings = ctx.settings.gitlab
        self.log: logging.Logger = ctx.log
        self.tally = Tally()
        self.stopping = threading.Event()
        self.submitted = 0
        self.listed: set[int] = set()
        self.total: int | None = None  # items to process; unknown until the listing ends
        self.started = time.monotonic()
        self.last_line = self.started
        with transaction(ctx.engine) as conn:
            self.stored = store.heads(conn)  # one query; compared in memory, item by item

    def run(self) -> Result:
        # The client keeps at most ``concurrency`` requests in flight, the listing's included.
        with ThreadPoolExecutor(max_workers=self.gl.concurrency, thread_name_prefix="itemsync") as pool:
            try:
                count = self._list(pool)
                if self.gl.delete_pass and not self._stop_asked():
                    self._deletion_pass(pool)
                self._wait()
            except BaseException:
                self.stopping.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        t = self.tally
        self.log.info("synced %d item bank ids in %.1f seconds: %d webhooks added, %d updated, %d deleted, "
                      "%d failed.  Job execution id: %s", count, time.monotonic() - self.started, t.hooks_added,
                      t.updated, t.deleted, t.failed, self.ctx.execution_id)
        text = summary(count, t.hooks_added, t.updated, t.deleted)
        if self.stopping.is_set():
            text += f" (stopped on request after {t.done} of {self.total if self.total is not None else '?'} items)"
        return Result(text, list(t.errors))

    # -- listing --------------------------------------------------------------------------------

    def _list(self, pool: ThreadPoolExecutor) -> int:
        """Page through the group's projects, handing each page to the pool; the count listed."""
        self.log.info("getting item bank ids from source control")
        start = time.monotonic()
        group_id = self.client.group_id(self.gl.group)
        count, ignored, page = 0, 0, 1
        while not self._stop_asked():
            t0 = time.monotonic()
            projects = self.client.projects_page(group_id, page, self.gl.per_page)
            self.log.debug("page %d of item bank ids: %d projects in %.3f seconds", page, len(projects),
                           time.monotonic() - t0)
            if not projects:
                break
            for project in projects:
                self.listed.add(project.id)
                if item.ignored(self.gl, project):
                    ignored += 1
                    continue
                count += 1
                self._submit(pool, self._item, project)
            self._report()
            page += 1
        self.total = self.submitted
        self.log.info("retrieved %d item bank ids from source control in %d seconds", count,
                      round(time.monotonic() - start))
        if ignored:
            self.log.info("ignored %d projects named by gitlab_ignore", ignored)
        return count

    def _deletion_pass(self, pool: ThreadPoolExecutor) -> None:
        gone = sorted(set(self.stored) - self.listed)
        self.log.info("deletion pass: %d stored items not listed in the group", len(gone))
        for project_id in gone:
            self._submit(pool, self._gone, project_id)
        self.total = self.submitted

    def _submit(self, pool: ThreadPoolExecutor, fn: object, arg: object) -> None:
        self.submitted += 1
        pool.submit(fn, arg)  # type: ignore[arg-type]

    # -- the work on one item (pool threads) -------------------------------------------------------

    def _item(self, project: "Project") -> None:
        if self.stopping.is_set():
            return
        try:
            hook_added = item.ensure_hook(self.client, self.gl, project.id)
            if hook_added:
                self._count(hooks_added=1)
            head = self.client.head_commit(project.id, project.default_branch) if project.default_branch else None
            if project.id in self.stored and self.stored[project.id] == head:
                return  # unchanged: nothing to write
            with item.item_lock(self.ctx.engine, self.gl, project.id, wait=self.gl.lock_lease) as owner:
                if item.refresh(self.ctx.engine, self.gl, self.client, project, owner).updated:
                    self._count(updated=1)
        except Exception as exc:  # noqa: BLE001 - one item's failure is reported, the others go on
            self.tally.failure(f"project {project.id} ({project.path})", exc)
        finally:
            self._count(done=1)

    def _gone(self, project_id: int) -> None:
        if self.stopping.is_set():
            return
        try:
            if self.client.project(project_id) is None:
                with item.item_lock(self.ctx.engine, self.gl, project_id, wait=self.gl.lock_lease) as owner:
                    if store.remove(self.ctx.engine, project_id, owner, self.gl.lock_lease):
                        self._count(deleted=1)
        except Exception as exc:  # noqa: BLE001
            self.tally.failure(f"deletion check of project {project_id}", exc)
        finally:
            self._count(done=1)

    def _count(self, **add: int) -> None:
        with self.tally.lock:
            for name, n in add.items():
                setattr(self.tally, name, getattr(self.tally, name) + n)

    # -- the coordinating thread ---------------------------------------------------------------------

    def _wait(self) -> None:
        """Until every submitted item is done: progress and the stop flag, every TICK."""
        while True:
            with self.tally.lock:
                done = self.tally.done
            skipped = self.stopping.is_set()
            if done >= self.submitted or skipped:
                break
            self._report()
            self._stop_asked()
            time.sleep(TICK)
        self._report(final=True)

    def _stop_asked(self) -> bool:
        if not self.stopping.is_set() and self.ctx.stop_requested():
            self.log.info("stop requested: no new item starts.  Job execution id: %s", self.ctx.execution_id)
            self.stopping.set()
        return self.stopping.is_set()

    def _report(self, final: bool = False) -> None:
        t = self.tally
        with t.lock:
            done, counts = t.done, {"hooks_added": t.hooks_added, "updated": t.updated, "deleted": t.deleted,
                                    "failed": t.failed}
        # Spring's step counters too: write_count (items written or deleted), process_skip_count (failed).
        self.ctx.progress(done, self.total, write_count=counts["updated"] + counts["deleted"],
                          process_skip_count=counts["failed"], **counts)
        now = time.monotonic()
        if final or now - self.last_line < PROGRESS_EVERY:
            return
        self.last_line = now
        rate = done / max(now - self.started, 1e-9)
        if self.total is None:
            where, eta = f"{done} item bank ids (listing)", "unknown"
        else:
            where = f"{done} of {self.total} item bank ids"
            eta = f"{(self.total - done) / rate:.0f} s" if rate > 0 else "unknown"
        self.log.info("processed %s, %.1f/s, ETA %s, %d webhooks added, %d updated, %d failed.  "
                      "Job execution id: %s", where, rate, eta, counts["hooks_added"], counts["updated"],
                      counts["failed"], self.ctx.execution_id)


@batch_job(JOB_NAME, step=STEP_NAME, label=LABEL, singleton=True)
def synchronize(ctx: StepContext) -> Result:
    """The tasklet of ``itemSynchronizationJob``."""
    item.require_configured(ctx.settings.gitlab)
    client = item.open_client(ctx.settings)
    try:
        return Sync(ctx, client).run()
    finally:
        client.close()
