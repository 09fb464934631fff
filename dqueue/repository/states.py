"""A repository submission's states: Dryad's values of ``stash_engine_repo_queue_states.state``
(dryad.md 3.2), as an enum so that a typo fails at import, not mid-deposit.

The table is an append-only log: every transition inserts a row, and a resource's current state
is its latest row (by id).  The normal life is ``enqueued`` → ``processing`` → ``completed``;
``rejected_shutting_down`` means held by ``hold-submissions.txt`` (re-enqueued by ``long_jobs
restart``); ``provisional_complete`` is kept for Dryad's rows (Merritt said OK, not yet seen).
"""
from __future__ import annotations

import enum


class RepoState(str, enum.Enum):
    REJECTED_SHUTTING_DOWN = "rejected_shutting_down"
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    PROVISIONAL_COMPLETE = "provisional_complete"
    COMPLETED = "completed"
    ERRORED = "errored"

    def __str__(self) -> str:
        return self.value


REPO_STATES = tuple(state.value for state in RepoState)
# Sent to Merritt already (or being sent): a duplicate submit or job never deposits these again.
SENT = (RepoState.PROCESSING, RepoState.PROVISIONAL_COMPLETE, RepoState.COMPLETED)
