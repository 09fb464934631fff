"""Per-system settings sections: typed, validated by the same rules, secrets known to the masker."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dqueue import config, masking
from dqueue.repository.settings import MerrittSettings
from dqueue.zenodo.settings import ZenodoSettings


def test_a_toml_table_a_flat_key_and_the_environment_give_the_same_section(tmp_path: Path) -> None:
    f = tmp_path / "dq.toml"
    f.write_text('zenodo_community = "dryad"\n[zenodo]\ntoken = "tok-file"\n'
                 '[merritt]\nbase_url = "https://merritt.example.org"\ncollection = "dryad"\ncheck_interval = 5\n')
    s = config.load(str(f), environ={"DQUEUE_MERRITT_PASSWORD": "pw-env", "DQUEUE_MERRITT_USER": "dryad"})
    assert isinstance(s.zenodo, ZenodoSettings) and isinstance(s.merritt, MerrittSettings)
    assert (s.zenodo.token, s.zenodo_token, s.zenodo.community) == ("tok-file", "tok-file", "dryad")
    assert s.merritt.base_url == "https://merritt.example.org" and s.merritt.check_interval == 5.0
    assert (s.merritt.user, s.merritt_password, s.merritt.check_limit) == ("dryad", "pw-env", 86400.0)
    assert s.merritt.timeouts == (30.0, 300.0) and s.merritt.http_policy.attempts == 5
    assert s.section("merritt") == s.merritt
    assert dataclasses.replace(s.merritt) == s.merritt  # frozen, comparable


def test_section_values_are_checked_and_the_error_names_where_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="setting 'merritt_check_interval' from environment "
                                                 "DQUEUE_MERRITT_CHECK_INTERVAL: must be > 0"):
        config.load(environ={"DQUEUE_MERRITT_CHECK_INTERVAL": "nan"})
    f = tmp_path / "dq.toml"
    f.write_text('[merritt]\nattempts = 2.5\n')
    with pytest.raises(config.ConfigError, match=f"setting 'merritt_attempts' from file {f}: must be an integer"):
        config.load(str(f), environ={})
    f.write_text('[merritt]\nbase_url = "merritt.example.org"\n')
    with pytest.raises(config.ConfigError, match="must be an http:// or https:// URL"):
        config.load(str(f), environ={})
    f.write_text('[merritt]\npasword = "typo"\n')
    with pytest.raises(config.ConfigError, match=r"unknown setting 'pasword' in \[merritt\]"):
        config.load(str(f), environ={})
    f.write_text('merritt_user = "a"\n[merritt]\nuser = "b"\n')
    with pytest.raises(config.ConfigError, match="given twice"):
        config.load(str(f), environ={})
    with pytest.raises(config.ConfigError, match="merritt_read_timeout.*from option --merritt-read-timeout"):
        config.Settings().replace(merritt_read_timeout=-1)


def test_secret_section_fields_are_masked_and_never_shown() -> None:
    s = config.load(environ={"DQUEUE_MERRITT_PASSWORD": "pw-9911-secret"})
    assert "pw-9911-secret" in config.secret_values(s)
    assert "pw-9911-secret" not in repr(s.merritt) and "pw-9911-secret" not in repr(s)
    try:
        masking.register_settings(s)
        assert "pw-9911-secret" not in masking.mask("login failed for dryad:pw-9911-secret")
    finally:
        masking.forget_secrets()


def test_every_numeric_section_field_has_a_limit_and_missing_says_what_to_set() -> None:
    for spec in config.sections().values():
        for f in dataclasses.fields(spec.cls):
            flat = f"{spec.name}_{f.name}"
            if f.type in ("int", "float"):
                assert "limit" in f.metadata or flat in config.LIMITS, flat
    assert config.Settings().merritt.missing() == ["merritt_base_url", "merritt_collection", "merritt_profile",
                                                   "merritt_user", "merritt_password", "merritt_submitter"]
    with pytest.raises(config.ConfigError, match="no settings section 'nosuchsystem'"):
        config.Settings().section("nosuchsystem")
