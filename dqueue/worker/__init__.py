"""Supervisor, worker loop, executor and monitor."""
from __future__ import annotations

from typing import Sequence

from .. import masking
from ..config import Settings
from ..store import make_engine, migrate


def run_pool(settings: Settings, count: int = 1, queues: Sequence[str] = (),
             min_priority: int | None = None, max_priority: int | None = None,
             burst: bool = False) -> int:
    """Run a supervisor with ``count`` worker processes until stopped; returns the exit code.

    Raises store.SchemaError before forking anything if the schema is not current.
    """
    from .loop import Worker
    from .supervisor import Supervisor

    masking.register_settings(settings)  # the forked workers inherit the registered secrets
    engine = make_engine(settings.resolved_database_url())
    try:
        migrate.check(engine)
    finally:
        engine.dispose()  # no connection may be shared with the forked workers

    def run_worker(slot: int) -> int:
        return Worker(settings, queues, min_priority, max_priority, burst).run()

    return Supervisor(settings, count, run_worker, burst).run()
