"""Settings sections: one typed settings object per external system, registered by its capability.

``@section("merritt")`` on a frozen dataclass makes its fields settings named ``merritt_<field>``
(config.py reads, checks and stores them; ``settings.merritt`` builds the object).  The registry
lives here so that config.py stays one concept: reading and checking values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .backoff import Backoff


@dataclass(frozen=True)
class SectionSpec:
    name: str
    cls: type
    builtin: bool  # its fields are Settings fields (zenodo), not kept in Settings.extra


_SECTIONS: dict[str, SectionSpec] = {}
_SECTION_FIELDS: dict[str, dataclasses.Field[Any]] = {}  # flat name -> field, for non-builtin sections
_SECTION_RULES: dict[str, dict[str, Any]] = {}  # flat name -> its field's metadata (limit, choices…)
_registered = False


def section(name: str) -> Any:
    """Class decorator: register a frozen dataclass as the settings section ``[name]``.

    A field's type is one of str, int, float, bool; its metadata may carry ``secret`` (SECRET),
    ``limit`` (a Limit: required for numbers), ``choices``, ``non_empty`` and ``url`` (http(s)).
    """
    def register(cls: type) -> type:
        from .config import _FIELDS, LIMITS  # config is loaded: capabilities register after it
        fields = dataclasses.fields(cls)
        flat = {f"{name}_{f.name}": f for f in fields}
        builtin = set(flat) <= set(_FIELDS)
        if not builtin and set(flat) & set(_FIELDS):
            raise ValueError(f"section {name!r} mixes Settings fields and its own")
        for key, f in flat.items():
            if str(f.type) in ("int", "float") and "limit" not in f.metadata and key not in LIMITS:
                raise ValueError(f"setting {key!r} has no limit")
            _SECTION_RULES[key] = dict(f.metadata)
            if not builtin:
                _SECTION_FIELDS[key] = f
        _SECTIONS[name] = SectionSpec(name, cls, builtin)
        return cls
    return register


class HttpSection:
    """What every section of an HTTP service derives from its ``connect_timeout``, ``read_timeout``,
    ``attempts`` and ``backoff`` fields, and the names of its required fields left unset."""
    connect_timeout: float
    read_timeout: float
    attempts: int
    backoff: float

    @property
    def timeouts(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @property
    def http_policy(self) -> Backoff:
        return Backoff(attempts=self.attempts, base=self.backoff)

    def unset(self, prefix: str, needed: tuple[str, ...]) -> list[str]:
        """``needed`` fields that are empty, as ``<prefix>_<field>`` setting names."""
        return [f"{prefix}_{name}" for name in needed if not getattr(self, name)]


def sections() -> dict[str, SectionSpec]:
    register_sections()
    return dict(_SECTIONS)


def register_sections() -> None:
    """Import the capabilities' settings modules once (they register their sections)."""
    global _registered
    if not _registered:
        _registered = True
        from . import capabilities
        capabilities.load_settings()
