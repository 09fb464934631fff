"""The capabilities this dqueue ships, named once.

The queue core (store/, worker/) never imports a capability: a capability registers its tables
(on the shared schema metadata), its jobs, its settings section and its drain marker when one of
the modules below is imported.  Every process imports them through ``jobs.BUILTIN_MODULES``; the
migration environment and the drift test import them through ``load`` to see every table.
"""
from __future__ import annotations

import importlib

from sqlalchemy import MetaData

# Importing each registers what its capability adds; order does not matter.
MODULES: tuple[str, ...] = (
    "dqueue.stash.schema",
    "dqueue.zenodo.schema",
    "dqueue.zenodo.jobs",
    "dqueue.repository.hold",
    "dqueue.repository.schema",
    "dqueue.repository.maintenance",
    "dqueue.repository.jobs",
    "dqueue.batch.schema",
    "dqueue.batch.runner",
    "dqueue.itemsync.schema",
    "dqueue.itemsync.jobs",
)
# Their settings sections (config.section), imported when settings are first read or checked:
# light modules, so that reading a config file does not import every client.
SETTINGS_MODULES: tuple[str, ...] = (
    "dqueue.zenodo.settings",
    "dqueue.repository.settings",
    "dqueue.itemsync.settings",
    "dqueue.web.settings",
)


def load_settings() -> None:
    for module in SETTINGS_MODULES:
        importlib.import_module(module)


def load() -> MetaData:
    """Import every capability module; returns the schema metadata, now with every table."""
    for module in MODULES:
        importlib.import_module(module)
    from .store.schema import metadata
    return metadata
