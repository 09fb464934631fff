"""The ``[zenodo]`` settings section (``settings.zenodo``).

Its fields are also plain Settings fields (``zenodo_token``, ``DQUEUE_ZENODO_TOKEN``), as they were
before sections existed; their limits are in config.LIMITS.  docs/zenodo.md describes each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..backoff import Backoff
from ..config import SECRET, section


@section("zenodo")
@dataclass(frozen=True)
class ZenodoSettings:
    url: str
    token: str = field(repr=False, metadata=SECRET)
    community: str
    request_interval: float
    http_attempts: int
    http_backoff: float
    timeout: float  # read timeout; connect: 30 s
    max_retries: int
    retry_delay: float
    recheck: float
    publish_wait: float

    @property
    def timeouts(self) -> tuple[float, float]:
        return (30.0, self.timeout)

    @property
    def http_policy(self) -> Backoff:
        return Backoff(attempts=self.http_attempts, base=self.http_backoff)
