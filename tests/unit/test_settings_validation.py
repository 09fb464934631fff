"""Settings are validated once, strictly, and an error names the setting and where it came from."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from dqueue import config

NUMERIC = [f.name for f in dataclasses.fields(config.Settings) if f.type in ("int", "float")]
# One value out of range for every numeric setting, whatever its limit: NaN, the infinities, and
# a value below its lowest (negative for those that admit 0, 0 for those that must be positive).
BAD_NUMBERS = ["nan", "inf", "-inf", "below"]


def below(name: str) -> int:
    """The largest integer the limit refuses: 0 where it must be positive, -1 where 0 is fine."""
    limit = config.LIMITS[name]
    low = math.floor(limit.low)
    return low - 1 if limit.inclusive and low == limit.low else low


def test_every_numeric_setting_has_a_limit() -> None:
    assert sorted(config.LIMITS) == sorted(NUMERIC)


def _as_text(name: str, bad: str) -> str:
    return str(below(name)) if bad == "below" else bad


def _as_value(name: str, bad: str) -> float:
    return below(name) if bad == "below" else float(bad)


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize("name", NUMERIC)
def test_out_of_range_from_the_environment_names_the_variable(name: str, bad: str) -> None:
    with pytest.raises(config.ConfigError, match=f"setting '{name}' from environment DQUEUE_{name.upper()}"):
        config.load(environ={f"DQUEUE_{name.upper()}": _as_text(name, bad)})


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize("name", NUMERIC)
def test_out_of_range_as_an_option_names_the_option(name: str, bad: str) -> None:
    option = "--" + name.replace("_", "-")
    with pytest.raises(config.ConfigError, match=f"setting '{name}' from option {option}") as caught:
        config.load(environ={}).replace(**{name: _as_value(name, bad)})
    assert caught.value.source == config.Source(config.SourceKind.OPTION, option)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "below"])
@pytest.mark.parametrize("name", NUMERIC)
def test_out_of_range_in_the_file_names_the_file(tmp_path: Path, name: str, bad: str) -> None:
    f = tmp_path / "dq.toml"
    f.write_text(f"{name} = {_as_text(name, bad)}\n")  # TOML has nan and inf literals
    with pytest.raises(config.ConfigError, match=f"setting '{name}' from file {f}"):
        config.load(str(f), environ={})


def test_a_polling_period_below_a_millisecond_is_refused() -> None:
    message = "'sleep_delay' from option --sleep-delay: must be > 0 \\(at least 0.001\\)"
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={}, sleep_delay=1e-9)
    assert config.load(environ={}, sleep_delay=0.001).sleep_delay == 0.001


def test_the_limits_admit_their_edges() -> None:
    s = config.load(environ={}, kill_after=0, max_jobs_per_worker=0, zenodo_request_interval=0,
                    batch_size=1000, max_worker_memory=512)
    assert (s.kill_after, s.batch_size, s.max_worker_memory) == (0.0, 1000, 512)
    assert isinstance(s.kill_after, float)  # an int is a float setting's value too
    with pytest.raises(config.ConfigError, match="'batch_size'.*<= 1000"):
        s.replace(batch_size=1001)


@pytest.mark.parametrize("line, message", [
    ("batch_size = 2.7", "'batch_size' from file .*must be an integer, not float"),
    ("batch_size = 2.0", "must be an integer, not float"),
    ("batch_size = true", "must be an integer, not bool"),
    ('batch_size = "10"', "must be an integer, not str"),
    ('sleep_delay = "1"', "'sleep_delay' .*must be a number, not str"),
    ("hostname = [1, 2]", "'hostname' .*must be a string, not list"),
    ('hostname = ""', "'hostname' .*must not be empty"),
    ("imports = [1]", "'imports' .*list of strings"),
    ('log_level = "LOUD"', "'log_level' .*must be one of .*INFO.*got 'LOUD'"),
    ('network_doorbell = "on"', "'network_doorbell' .*must be one of auto, off"),
    ('zenodo_url = "ftp://zenodo.org"', "'zenodo_url' .*http:// or https://"),
])
def test_toml_types_must_match(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "dq.toml"
    f.write_text(line + "\n")
    with pytest.raises(config.ConfigError, match=message):
        config.load(str(f), environ={})


@pytest.mark.parametrize("bad", ["", ".relative", "a b", "a..b", "1st"])
def test_imports_are_module_names(bad: str) -> None:
    with pytest.raises(config.ConfigError, match=f"'imports' from option --import: not a module name: '{bad}'"):
        config.load(environ={}).replace(imports=("ok.module", bad))
    with pytest.raises(config.ConfigError, match="'imports' from environment DQUEUE_IMPORTS"):
        config.load(environ={"DQUEUE_IMPORTS": f"ok, {bad or '-'}"})


def test_matching_toml_types_are_taken(tmp_path: Path) -> None:
    f = tmp_path / "dq.toml"
    f.write_text('sleep_delay = 1\nimports = "a, b"\nlog_level = "debug"\n')
    s = config.load(str(f), environ={})
    assert (s.sleep_delay, s.imports, s.log_level) == (1.0, ("a", "b"), "DEBUG")


@pytest.mark.parametrize("text", ["2.7", "1e3", "ten", "0x10"])
def test_integers_from_the_environment_are_not_truncated(text: str) -> None:
    with pytest.raises(config.ConfigError, match="'batch_size' from environment DQUEUE_BATCH_SIZE.*not an integer"):
        config.load(environ={"DQUEUE_BATCH_SIZE": text})


def test_booleans_parse_as_booleans() -> None:
    assert [config.parse_text("bool", w) for w in ("true", "Yes", "1", "on")] == [True] * 4
    assert [config.parse_text("bool", w) for w in ("false", "NO", "0", "off")] == [False] * 4
    with pytest.raises(ValueError, match="not a boolean"):
        config.parse_text("bool", "maybe")
    assert config.typed("bool", False) is False
    with pytest.raises(ValueError, match="true or false"):
        config.typed("bool", 1)


@pytest.mark.parametrize("url, message", [
    ("postgres+foo://h/db", "unsupported database 'postgres\\+foo'"),
    ("ftp://h/db", "unsupported database 'ftp'"),
    ("not a url", "not a database URL"),
    ("mysql+pymysql://u:secret@h:port/db", "not a database URL"),
    ("mysql+pymysql://u@h:99999/db", "port 99999 is out of range"),
    ("mysql+nosuchdriver://h/db", "unknown database driver 'mysql\\+nosuchdriver'"),
])
def test_database_urls_are_checked_without_showing_them(url: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match="'database_url' from environment DQUEUE_DATABASE_URL: "
                       + message) as caught:
        config.load(environ={"DQUEUE_DATABASE_URL": url})
    assert "secret" not in str(caught.value)


def test_good_database_urls_pass() -> None:
    for url in ("sqlite:///var/x.sqlite3", "sqlite://", "mysql://u@h/db", "mariadb+pymysql://u:p@h:3307/db"):
        assert config.load(environ={}, database_url=url).database_url == url


def test_the_cross_check_names_both_sources() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ={"DQUEUE_HEARTBEAT_INTERVAL": "40"})
    assert "from default" in str(caught.value) and "DQUEUE_HEARTBEAT_INTERVAL" in str(caught.value)
    assert caught.value.source == config.environment_source("heartbeat_interval")


def test_replace_keeps_earlier_sources_and_validates() -> None:
    s = config.load(environ={"DQUEUE_SLEEP_DELAY": "0.5"}).replace(batch_size=5)
    assert s.source("sleep_delay") == config.environment_source("sleep_delay")
    assert s.source("batch_size") == config.option_source("batch_size")
    assert s.source("grace_period") == config.DEFAULT
    with pytest.raises(config.ConfigError, match="'sleep_delay' from option --sleep-delay: must be > 0"):
        s.replace(sleep_delay=math.nan)
    with pytest.raises(config.ConfigError, match="unknown setting"):
        s.replace(sleep_dealy=1.0)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(config.ConfigError, match="'sleep_delay' from Python code"):
        config.Settings(sleep_delay=-1)
