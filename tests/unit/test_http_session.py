"""The shared session reads the environment once per origin, and still honours it."""
from __future__ import annotations

import pytest

from dqueue.http import make_session


def test_proxies_and_no_proxy_from_the_environment_are_still_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "gitlab.internal")
    session = make_session(None)
    via = session.merge_environment_settings("https://zenodo.org/api/x", {}, None, None, None)
    direct = session.merge_environment_settings("https://gitlab.internal/api/v4/x", {}, None, None, None)
    assert via["proxies"].get("https") == "http://proxy.example:3128"
    assert "https" not in direct["proxies"]


def test_the_environment_is_read_once_per_origin_and_answers_are_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    session = make_session(None)
    first = session.merge_environment_settings("https://a.example/1", {}, None, None, None)
    first["verify"] = "tampered"
    monkeypatch.setenv("HTTPS_PROXY", "http://late.example:1")  # read already for this origin: not seen
    again = session.merge_environment_settings("https://a.example/2?x=1", {}, None, None, None)
    assert again["verify"] != "tampered" and "https" not in again["proxies"]
    other = session.merge_environment_settings("https://b.example/", {}, None, None, None)
    assert other["proxies"].get("https") == "http://late.example:1"  # another origin is read afresh
