from __future__ import annotations

from pathlib import Path

import pytest

from dqueue import config


def test_defaults_use_sqlite_under_var() -> None:
    s = config.load(environ={})
    assert s.resolved_database_url() == "sqlite:///var/dqueue.sqlite3"
    assert s.stale_after <= 60


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "dq.toml"
    f.write_text('database_url = "sqlite:///from-file"\nsleep_delay = 2\nimports = ["a", "b"]\n')
    s = config.load(str(f), environ={"DQUEUE_SLEEP_DELAY": "3", "DQUEUE_HOSTNAME": "web2"})
    assert (s.database_url, s.sleep_delay, s.hostname, s.imports) == ("sqlite:///from-file", 3.0, "web2", ("a", "b"))
    s = config.load(str(f), environ={"DQUEUE_SLEEP_DELAY": "3"}, sleep_delay=4)
    assert s.sleep_delay == 4.0


@pytest.mark.parametrize("text, message", [
    ("nope = 1\n", "unknown setting 'nope'"),
    ("sleep_delay = 'soon'\n", "setting 'sleep_delay'"),
    ("sleep_delay = -1\n", "must be > 0"),
    ("heartbeat_interval = 40\n", "must exceed twice"),
    ("database_url = \n", "config file"),
])
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "dq.toml"
    f.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load(str(f), environ={})


def test_missing_config_file_is_an_error() -> None:
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load("/nonexistent/dq.toml", environ={})
