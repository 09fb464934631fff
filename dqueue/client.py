"""Enqueueing from Python: one call, optionally inside the caller's own transaction, or in bulk."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from sqlalchemy import Connection, Engine, event, make_url
from sqlalchemy.exc import DBAPIError

from . import config, doorbell, jobs, netbell
from .store import NewJob, make_engine, processes
from .store import queue as store_queue

T = TypeVar("T")


class UnknownJobError(LookupError):
    """The job name is not registered in this process (import its module, or pass check=False)."""


@dataclass(frozen=True)
class JobSpec:
    """One job for ``enqueue_many``; None means the registered job's default."""
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    run_at: dt.datetime | None = None


# The columns' range: MariaDB's DATETIME is documented for years 1000-9999, and SQLite stores text
# that sorts as a time only with four-digit years (year 1 was stored unpadded, and every worker
# and listing then crashed reading it back: issue 7).
EARLIEST, LATEST = dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
# delayed_jobs.priority is an INT column.
PRIORITY_MIN, PRIORITY_MAX = -(2 ** 31), 2 ** 31 - 1


def to_utc_naive(when: dt.datetime | None) -> dt.datetime | None:
    """Stored times are naive UTC; aware datetimes are converted, naive ones taken as UTC.

    ValueError for a time that is not a datetime or falls outside the years 1000-9999 in UTC.
    """
    if when is None:
        return None
    if not isinstance(when, dt.datetime):
        raise ValueError(f"run_at must be a datetime, got {type(when).__name__}")
    try:
        utc = when if when.tzinfo is None else when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except OverflowError:
        utc = None  # before year 1 or after 9999 once converted to UTC
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"run_at {when.isoformat()} is out of range: it must fall between "
                         f"{EARLIEST.isoformat()} and {LATEST.isoformat()} UTC")
    return utc


def build(spec: JobSpec, check: bool = True) -> NewJob:
    """Validate a JobSpec and turn it into the row to insert; ValueError/UnknownJobError if bad."""
    if not isinstance(spec.name, str) or not spec.name:
        raise ValueError(f"the job name must be a non-empty string, got {spec.name!r}")
    jobdef = jobs.get(spec.name)
    if jobdef is None and check:
        known = ", ".join(jobs.registered()) or "none"
        raise UnknownJobError(f"unknown job {spec.name!r} (registered here: {known})")
    queue = spec.queue if spec.queue is not None else (jobdef.queue if jobdef else "default")
    priority = spec.priority if spec.priority is not None else (jobdef.priority if jobdef else 0)
    if not isinstance(queue, str) or not queue or len(queue) > 255:
        raise ValueError("queue must be a non-empty name of at most 255 characters")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority must be an integer, got {priority!r}")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority {priority} is out of range: it must be between {PRIORITY_MIN} "
                         f"and {PRIORITY_MAX}")
    return NewJob(jobs.encode_handler(spec.name, spec.args), queue, priority, to_utc_naive(spec.run_at))


def _as_connection(connection: Any) -> Connection:
    """Accept a SQLAlchemy Connection, or an ORM Session (its current connection)."""
    if isinstance(connection, Connection):
        return connection
    if hasattr(connection, "connection") and callable(connection.connection):
        return connection.connection()  # type: ignore[no-any-return]
    raise TypeError("connection must be a SQLAlchemy Connection or Session")


class Client:
    """Enqueues jobs into one database."""

    def __init__(self, settings: config.Settings | None = None, *, engine: Engine | None = None) -> None:
        self.settings = settings or config.load()
        self._engine = engine
        self.doorbell_folder = self.settings.doorbell_folder()
        self._ringer: netbell.Ringer | None = None
        self._ringer_checked = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # No ping per checkout (a round trip per enqueue): _write retries a dead connection.
            self._engine = make_engine(self.settings.resolved_database_url(), pre_ping=False)
        return self._engine

    def _insert_one(self, row: NewJob) -> int:
        """One INSERT and COMMIT straight on a pooled DBAPI connection: the common enqueue.

        Same rule as ``_write``: a connection found dead before COMMIT committed nothing and is
        replaced once; an error during COMMIT is ambiguous and raised.
        """
        dialect = self.engine.dialect
        for attempt in (1, 2):
            pooled = self.engine.raw_connection()
            committing = False
            try:
                job_id = store_queue.insert_uncommitted(pooled, dialect, row)
                committing = True
                pooled.commit()
                return job_id
            except dialect.loaded_dbapi.Error as exc:
                dead = dialect.is_disconnect(exc, pooled.dbapi_connection, None)
                if dead:
                    pooled.invalidate()
                else:
                    pooled.rollback()
                if dead and not committing and attempt == 1:
                    continue
                raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error,
                                          connection_invalidated=dead) from exc
            finally:
                pooled.close()
        raise AssertionError("unreachable")

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction of its own, on a fresh connection if the pooled one is dead.

        A connection found dead before COMMIT (the server restarted, or closed it after
        wait_timeout) committed nothing, so the write is retried once on a new connection.  An
        error during COMMIT is ambiguous (the row may be in) and is raised, never retried.
        """
        for attempt in (1, 2):
            with self.engine.connect() as conn:
                trans = conn.begin()
                try:
                    result = fn(conn)
                except DBAPIError as exc:
                    if exc.connection_invalidated and attempt == 1:
                        continue
                    raise
                trans.commit()
                return result
        raise AssertionError("unreachable")

    def enqueue(self, name: str, args: dict[str, Any] | None = None, *, queue: str | None = None,
                priority: int | None = None, run_at: dt.datetime | None = None,
                connection: Any = None, check: bool = True) -> int:
        """Add one job and return its id.

        With ``connection`` (a Connection or Session of the same database) the row is written in
        the caller's transaction and commits or rolls back with it; otherwise it commits at once.
        """
        row = build(JobSpec(name, args or {}, queue, priority, run_at), check)
        if connection is not None:
            return store_queue.enqueue(self._joined(connection), row)
        job_id = self._insert_one(row)
        self.ring()
        return job_id

    def enqueue_many(self, specs: Iterable[JobSpec], *, connection: Any = None,
                     check: bool = True) -> list[int]:
        """Add many jobs in one transaction; all or none are written. Ids in the order given."""
        rows = [build(s, check) for s in specs]
        if connection is not None:
            return store_queue.enqueue_many(self._joined(connection), rows)
        ids = self._write(lambda conn: store_queue.enqueue_many(conn, rows))
        self.ring()
        return ids

    def ring(self) -> None:
        """Wake idle workers after a commit: this host's by the UNIX doorbell, other hosts' over
        UDP (netbell.py).  Best effort, never raises: polling finds the job anyway."""
        doorbell.ring(self.doorbell_folder)
        ringer = self._network_ringer()
        if ringer is not None:
            ringer.ring()

    def _network_ringer(self) -> netbell.Ringer | None:
        if not self._ringer_checked:
            self._ringer_checked = True
            # From the URL: a client used only with callers' connections never makes its engine.
            backend = (self._engine.dialect.name if self._engine is not None
                       else make_url(self.settings.resolved_database_url()).get_backend_name())
            if netbell.wanted(self.settings.network_doorbell, backend):
                # Workers on this host hear the UNIX doorbell, unless this client does not ring it.
                self._ringer = netbell.Ringer(
                    lambda: processes.bells(self.engine, self.settings.stale_after),
                    self.settings.hostname, same_host=self.doorbell_folder is None)
        return self._ringer

    def _joined(self, connection: Any) -> Connection:
        """The caller's connection; its COMMIT rings the doorbells.

        SQLAlchemy's commit event comes just before the COMMIT is sent, not after: a worker that
        polls before the COMMIT lands finds nothing, so a rung worker looks once more 10 ms later
        (ECHO_DELAY in worker/loop.py).
        """
        conn = _as_connection(connection)
        if not getattr(conn, "_dqueue_rings", False):
            event.listen(conn, "commit", lambda _conn: self.ring())
            conn._dqueue_rings = True  # type: ignore[attr-defined]
        return conn


_default: Client | None = None


def default_client() -> Client:
    global _default
    if _default is None:
        _default = Client()
    return _default


def enqueue(name: str, args: dict[str, Any] | None = None, **options: Any) -> int:
    """``Client.enqueue`` on the database of the default settings (config file, environment)."""
    return default_client().enqueue(name, args, **options)


def enqueue_many(specs: Iterable[JobSpec], **options: Any) -> list[int]:
    return default_client().enqueue_many(specs, **options)
