"""Objects for ``dqueue console``: what operators type today in a Rails console, in Python.

    >>> Resource.get(42).send_to_zenodo()
    >>> Resource.get(42).submit_to_repository()
    >>> ZenodoCopy.where(state="error")

They are thin: every read and write goes through the storage layer's verbs, so the console
enforces the same rules as the jobs and the CLI (one copy per resource and type, the copy row
and its job committed together).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine

from .stash import resources
from .zenodo import store as zenodo_copies


class _Bound:
    engine: ClassVar[Engine | None] = None
    settings: ClassVar[Any] = None  # the console's settings: a submit needs this host's name and flag dir

    @classmethod
    def _engine(cls) -> Engine:
        if _Bound.engine is None:
            raise RuntimeError("models are not bound to a database: call dqueue.models.bind(engine)")
        return _Bound.engine


def bind(engine: Engine, settings: Any = None) -> None:
    _Bound.engine = engine
    _Bound.settings = settings


@dataclass(frozen=True)
class Resource(_Bound):
    row: resources.Resource

    @classmethod
    def get(cls, resource_id: int) -> "Resource":
        found = resources.get(cls._engine(), resource_id)
        if found is None:
            raise LookupError(f"no resource {resource_id}")
        return cls(found)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)

    def send_to_zenodo(self) -> "ZenodoCopy":
        return self._send("data", False)

    def send_software_to_zenodo(self, publish: bool = False) -> "ZenodoCopy":
        return self._send("software", publish)

    def send_supp_to_zenodo(self, publish: bool = False) -> "ZenodoCopy":
        return self._send("supp", publish)

    def submit_to_repository(self, force: bool = False) -> Any:
        """Enqueue this version's deposit (dqueue repo submit); returns the SubmitResult."""
        from .repository.submit import submit
        if _Bound.settings is None:
            raise RuntimeError("models are not bound to settings: call dqueue.models.bind(engine, settings)")
        result = submit(self._engine(), self.row.id, _Bound.settings, force=force)
        print(result.message)
        return result

    def repository_states(self) -> list[Any]:
        """The state history of this version's repository submissions, oldest first."""
        from .repository import store as repo
        with self._engine().connect() as conn:
            return repo.history(conn, self.row.id)

    def zenodo_copies(self) -> list["ZenodoCopy"]:
        return [ZenodoCopy(c) for c in zenodo_copies.find(self._engine(), resource_id=self.row.id)]

    def _send(self, kind: str, publish: bool) -> "ZenodoCopy":
        from .zenodo.jobs import send
        sent = send(self._engine(), self.row.id, kind, publish)
        print(("enqueued" if sent.created else "already there:") + f" copy {sent.copy.id} "
              f"({sent.copy.copy_type}, {sent.copy.state}, job {sent.copy.job_id})")
        return ZenodoCopy(sent.copy)


@dataclass(frozen=True)
class ZenodoCopy(_Bound):
    row: zenodo_copies.Copy

    @classmethod
    def get(cls, copy_id: int) -> "ZenodoCopy":
        found = zenodo_copies.get(cls._engine(), copy_id)
        if found is None:
            raise LookupError(f"no zenodo copy {copy_id}")
        return cls(found)

    @classmethod
    def where(cls, *, state: str | None = None, resource_id: int | None = None,
              identifier_id: int | None = None) -> list["ZenodoCopy"]:
        return [cls(c) for c in zenodo_copies.find(cls._engine(), state=state, resource_id=resource_id,
                                                   identifier_id=identifier_id)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)

    @property
    def error_info(self) -> str:
        return zenodo_copies.error_info(self._engine(), self.row.id) or ""

    def reload(self) -> "ZenodoCopy":
        return ZenodoCopy.get(self.row.id)
