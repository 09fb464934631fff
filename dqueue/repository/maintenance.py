"""The repository's part in ``long_jobs``: restart re-enqueues held submissions per host, status
counts submissions by current state and host (what Dryad's queue page showed per server)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from .. import flags
from ..store.queue import transaction
from . import store as repo
from .states import RepoState
from .submit import requeue_held

# How 'long_jobs status' names the states (held is what operators call rejected_shutting_down).
LABELS = {RepoState.REJECTED_SHUTTING_DOWN: "held", RepoState.ENQUEUED: "enqueued",
          RepoState.PROCESSING: "processing", RepoState.PROVISIONAL_COMPLETE: "provisional_complete",
          RepoState.COMPLETED: "completed", RepoState.ERRORED: "errored"}
PER_HOST = ("held", "enqueued", "processing", "errored")  # what decides whether a host can be stopped


@flags.on_scoped_restart("repository")
def restart_held(engine: Engine, scope: flags.RestartScope) -> str:
    done = requeue_held(engine, scope.hostname, scope.from_host)
    whose = "any host" if scope.from_host is None else scope.from_host
    if not done:
        return f"no held submissions of {whose}"
    listed = ", ".join(f"{r.resource_id}" + (" (forced)" if r.forced else "") for r in done[:20])
    more = f" and {len(done) - 20} more" if len(done) > 20 else ""
    return (f"re-enqueued {len(done)} held submissions of {whose} on {scope.hostname}, oldest first: "
            f"resources {listed}{more}")


@flags.on_status("repository")
def status(engine: Engine) -> dict[str, object]:
    with transaction(engine) as conn:
        counts = repo.counts(conn)
        held = repo.listing(conn, RepoState.REJECTED_SHUTTING_DOWN, limit=1)
    totals = {label: 0 for label in LABELS.values()}
    hosts: dict[str | None, dict[str, Any]] = {}
    for c in counts:
        if c.state is None:
            continue  # a row written by hand without a state
        label = LABELS[c.state]
        totals[label] += c.count
        if label in PER_HOST:
            entry = hosts.setdefault(c.hostname, {"host": c.hostname, **{k: 0 for k in PER_HOST}})
            entry[label] += c.count
    section: dict[str, object] = {"submissions": totals,
                                  "hosts": sorted(hosts.values(), key=lambda h: h["host"] or "")}
    if held:
        section["oldest_held_since"] = held[0].created_at  # Dryad's dashboard went red after 4 hours
    return section
