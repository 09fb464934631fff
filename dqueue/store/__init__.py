"""The storage layer: the only place in dqueue that speaks SQL."""
from . import stash_schema  # noqa: F401,E402  (its tables join the schema metadata)
from .claim import Claimer
from .engine import make_engine
from .migrate import SchemaError
from .queue import ClaimedJob, NewJob

__all__ = ["make_engine", "SchemaError", "ClaimedJob", "Claimer", "NewJob"]
