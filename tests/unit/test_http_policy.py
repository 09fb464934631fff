"""The shared retry policy and the 429 wait, as pure functions."""
from __future__ import annotations

import email.utils
import random

import pytest

from dqueue import http
from dqueue.backoff import Backoff


def test_backoff_doubles_up_to_its_cap_and_jitters_down_only() -> None:
    policy = Backoff(attempts=5, base=2, max=10)
    assert [policy.ceiling(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    rng = random.Random(7)
    for n in range(1, 6):
        d = policy.delay(n, rng)
        assert policy.ceiling(n) / 2 <= d <= policy.ceiling(n)


def test_backoff_without_jitter_is_exact_and_bad_policies_fail_at_once() -> None:
    assert [Backoff(base=600, factor=6, max=float("inf"), jitter=0).delay(n) for n in (1, 2)] == [600, 3600]
    with pytest.raises(ValueError, match="attempts"):
        Backoff(attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


@pytest.mark.parametrize("header", ["RateLimit-Reset", "X-RateLimit-Reset"])
def test_429_wait_reads_the_configured_reset_header(header: str) -> None:
    assert http.rate_limit_wait({header: "1040"}, header, now=lambda: 1000.0) == (40.0, header)
    # another service's header name is not this service's
    assert http.rate_limit_wait({"Other-Reset": "1040"}, header, now=lambda: 1000.0) == (1.0, "backoff")


def test_retry_after_wins_in_seconds_or_as_an_http_date() -> None:
    assert http.rate_limit_wait({"Retry-After": "30", "RateLimit-Reset": "9999"}) == (30.0, "Retry-After")
    date = email.utils.formatdate(1120.0, usegmt=True)
    assert http.rate_limit_wait({"Retry-After": date}, now=lambda: 1000.0) == (120.0, "Retry-After")
    assert http.rate_limit_wait({"Retry-After": "soon"}) == (1.0, "backoff")


def test_auth_goes_only_to_its_origin_and_names_its_secrets() -> None:
    import requests
    bearer = http.Bearer("https://api.example.org/base", "tok-123")
    basic = http.Basic("https://merritt.example.org", "dryad", "pw-456")
    assert bearer.secrets() == ("tok-123",) and basic.secrets() == ("pw-456",)
    mine = requests.Request("GET", "https://api.example.org/x").prepare()
    other = requests.Request("GET", "https://files.example.org/x").prepare()
    assert bearer(mine).headers["Authorization"] == "Bearer tok-123"
    assert "Authorization" not in bearer(other).headers
    signed = basic(requests.Request("GET", "https://merritt.example.org/object/update").prepare())
    assert signed.headers["Authorization"].startswith("Basic ")
