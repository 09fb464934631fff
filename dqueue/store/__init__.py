"""The storage layer: the only place in dqueue that speaks SQL."""
from .engine import make_engine
from .migrate import SchemaError
from .queue import ClaimedJob, Claimer, NewJob

__all__ = ["make_engine", "SchemaError", "ClaimedJob", "Claimer", "NewJob"]
