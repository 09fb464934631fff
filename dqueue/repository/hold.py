"""The repository's drain marker, ``hold-submissions.txt`` (the name Dryad's runbook uses).

While it exists, a submit and a deposit job reaching its turn record ``rejected_shutting_down``
with the hostname and send nothing; deposits already running finish.  ``long_jobs restart``
removes it and re-enqueues this host's held submissions.
"""
from __future__ import annotations

from .. import flags

HOLD_SUBMISSIONS = flags.register_marker(
    "hold-submissions.txt", "repository",
    "repository submissions are recorded 'rejected_shutting_down' and not sent; running deposits finish")


def is_held(flag_dir: str) -> bool:
    return flags.is_set(flag_dir, HOLD_SUBMISSIONS)
