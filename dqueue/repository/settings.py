"""The ``[merritt]`` settings section (``settings.merritt``): where and how to deposit.

    [merritt]
    base_url = "https://merritt.cdlib.org"
    collection = "dryad"              # local_id_search: {base_url}/api/{collection}/local_id_search
    profile = "cdl_dryad_content"     # the ingest profile named in every deposit
    user = "dryad"
    password = "…"                    # or DQUEUE_MERRITT_PASSWORD; masked everywhere
    submitter = "Dryad"
    public_base_url = "https://dryad.example.org/staging"   # where Merritt fetches local files
    staging_dir = "/srv/dryad/staging"  # the folder public_base_url serves (default var/merritt-staging)

Every field can also be given flat (``merritt_password = …``) or as ``DQUEUE_MERRITT_<FIELD>``.
An empty base_url means no repository is configured: a deposit job refuses with that reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import COUNT, POSITIVE, SECRET, ZERO_OK, section
from ..config_sections import HttpSection


@section("merritt")
@dataclass(frozen=True)
class MerrittSettings(HttpSection):
    base_url: str = field(default="", metadata={"url": True})
    collection: str = ""
    profile: str = ""
    user: str = ""
    password: str = field(default="", repr=False, metadata=SECRET)
    submitter: str = ""
    public_base_url: str = field(default="", metadata={"url": True})
    staging_dir: str = "var/merritt-staging"  # served at public_base_url; one folder per resource
    check_interval: float = field(default=30.0, metadata={"limit": POSITIVE})  # between completion checks
    check_limit: float = field(default=86400.0, metadata={"limit": POSITIVE})  # then errored
    connect_timeout: float = field(default=30.0, metadata={"limit": POSITIVE})
    read_timeout: float = field(default=300.0, metadata={"limit": POSITIVE})
    attempts: int = field(default=5, metadata={"limit": COUNT})  # tries per request (5xx, timeouts)
    backoff: float = field(default=2.0, metadata={"limit": ZERO_OK})  # first wait between them
    request_interval: float = field(default=0.0, metadata={"limit": ZERO_OK})  # pacing, all workers

    def missing(self) -> list[str]:
        """The settings a deposit needs that are not set, as ``merritt_<field>`` names."""
        needed = ("base_url", "collection", "profile", "user", "password", "submitter")
        return self.unset("merritt", needed)
