"""The storage layer: the only place in dqueue that speaks SQL."""
from .claim import Claimer
from .engine import make_engine
from .migrate import SchemaError
from .queue import ClaimedJob, NewJob

__all__ = ["make_engine", "SchemaError", "ClaimedJob", "Claimer", "NewJob"]
