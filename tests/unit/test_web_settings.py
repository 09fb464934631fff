"""The [web] settings: defaults, limits, the token list from TOML and the environment, masking."""
from __future__ import annotations

from pathlib import Path

import pytest

from dqueue import config, masking


def test_defaults() -> None:
    web = config.load(environ={}).web
    assert (web.host, web.port, web.tokens, web.max_body, web.threads) == ("127.0.0.1", 8081, (), 1048576, 8)
    assert web.abandon_wait == 10.0


def test_tokens_from_the_environment_are_a_comma_separated_list() -> None:
    web = config.load(environ={"DQUEUE_WEB_TOKENS": "one-token-abcdefgh, sha256:" + "a" * 64}).web
    assert web.tokens == ("one-token-abcdefgh", "sha256:" + "a" * 64)


def test_tokens_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "dqueue.toml"
    path.write_text('[web]\nport = 0\ntokens = ["first-token-abcdefgh", "second-token-abcdefg"]\n')
    web = config.load(str(path), environ={}).web
    assert web.port == 0
    assert web.tokens == ("first-token-abcdefgh", "second-token-abcdefg")


@pytest.mark.parametrize("name,value", [
    ("DQUEUE_WEB_PORT", "65536"), ("DQUEUE_WEB_PORT", "-1"), ("DQUEUE_WEB_PORT", "http"),
    ("DQUEUE_WEB_THREADS", "0"), ("DQUEUE_WEB_THREADS", "1001"), ("DQUEUE_WEB_MAX_BODY", "0"),
    ("DQUEUE_WEB_ABANDON_WAIT", "-1"), ("DQUEUE_WEB_ABANDON_WAIT", "nan"), ("DQUEUE_WEB_HOST", " "),
])
def test_out_of_range_values_are_refused_with_the_setting_named(name: str, value: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ={name: value})
    assert name.removeprefix("DQUEUE_").lower() in str(caught.value)


def test_tokens_are_secret_settings_and_each_plain_one_is_masked() -> None:
    hashed = "sha256:" + "b" * 64
    settings = config.load(environ={"DQUEUE_WEB_TOKENS": f"the-only-token-xyz,{hashed}"})
    assert "the-only-token-xyz" not in repr(settings.web)
    try:
        masking.register_settings(settings)  # what every process does at start
        assert masking.mask("got the-only-token-xyz in a message") == "got hidden in a message"
    finally:
        masking.forget_secrets()
