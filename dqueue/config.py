"""One frozen settings object, read once from defaults < config file < environment < flags.

The config file is TOML (Python's own tomllib), found at ``--config``, ``$DQUEUE_CONFIG`` or
``./dqueue.toml``.  Every key can also be given as ``DQUEUE_<KEY>`` in the environment.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import doorbell

DEFAULT_SQLITE_PATH = Path("var") / "dqueue.sqlite3"


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range."""


# Field metadata of a setting whose value must never be shown: the one masker learns every such
# value (secret_values) and hides it in log lines, last_error, error_info and stored tracebacks.
SECRET = {"secret": True}


@dataclass(frozen=True)
class Settings:
    database_url: str = ""  # empty: SQLite file under ./var/
    hostname: str = field(default_factory=socket.gethostname)
    imports: tuple[str, ...] = ()
    # Worker polling and batching.
    sleep_delay: float = 0.07  # see docs/benchmarks.md: latency vs idle cost
    batch_size: int = 10
    prefetch_hold: float = 1.0  # seconds a claimed-but-unstarted job may wait before it is handed back
    priority_refresh: float = 1.0  # seconds between refreshes of the set of pending priorities
    # Crash safety.
    heartbeat_interval: float = 10.0
    stale_after: float = 60.0
    grace_period: float = 30.0
    kill_after: float = 10.0  # extra seconds a stuck job gets after being interrupted, before os._exit
    # Worker recycling (as Celery's max_tasks_per_child / max_memory_per_child); 0: off.
    max_jobs_per_worker: int = 0  # a worker is replaced gracefully after this many jobs
    max_worker_memory: int = 0  # MiB: a worker whose RSS after a job exceeds this is replaced
    # Defaults for jobs registered without their own values.
    max_attempts: int = 25
    max_run_time: float = 4 * 3600.0
    backoff_base: float = 5.0
    backoff_max: float = 6 * 3600.0
    # Daemon mode.
    pid_dir: str = "var/run"
    log_dir: str = "var/log"
    log_level: str = "INFO"
    flag_dir: str = "var/flags"
    doorbell_dir: str = ""  # "": <pid_dir>/doorbell; "off": polling only (see doorbell.py)
    # Zenodo copies (docs/zenodo.md).
    zenodo_url: str = "https://sandbox.zenodo.org"
    zenodo_token: str = field(default="", repr=False, metadata=SECRET)  # masked everywhere (masking.py)
    zenodo_community: str = ""  # a community id to add every deposition to ("": none)
    zenodo_request_interval: float = 0.72  # seconds between requests, all workers: 5,000/hour
    zenodo_http_attempts: int = 5  # tries per request on 5xx, timeouts and dropped connections
    zenodo_http_backoff: float = 2.0  # first wait between those tries; doubles, with jitter
    zenodo_timeout: float = 180.0  # read timeout of a request (connect: 30 s)
    zenodo_max_retries: int = 3  # a copy in error is started again automatically while retries < this
    zenodo_retry_delay: float = 600.0  # wait before the 2nd start; x6 before the 3rd (1 h)
    zenodo_recheck: float = 60.0  # a copy waiting for its predecessor looks again after this
    zenodo_publish_wait: float = 5.0  # pause between the rounds of a publish check
    network_doorbell: str = "auto"  # "auto": on for MariaDB/MySQL; "off" (see netbell.py)

    def doorbell_folder(self) -> Path | None:
        return doorbell.directory(self.doorbell_dir, self.pid_dir, self.resolved_database_url())

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the given non-None values applied and validated."""
        clean = {k: v for k, v in changes.items() if v is not None}
        return _validated(dataclasses.replace(self, **clean))


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def secret_values(settings: Settings) -> list[str]:
    """The values of every setting marked SECRET that is set."""
    return [str(getattr(settings, f.name)) for f in _FIELDS.values()
            if f.metadata.get("secret") and getattr(settings, f.name)]


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if kind == "float":
            return float(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("boolean")
            return int(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {value!r} ({exc})") from None


def _validated(s: Settings) -> Settings:
    positive = ("sleep_delay", "heartbeat_interval", "stale_after", "grace_period", "backoff_base",
                "max_run_time", "priority_refresh")
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be > 0, got {getattr(s, name)!r}")
    for name in ("zenodo_http_attempts", "zenodo_max_retries"):
        if getattr(s, name) < 1:
            raise ConfigError(f"setting {name!r} must be >= 1, got {getattr(s, name)!r}")
    for name in ("zenodo_request_interval", "zenodo_http_backoff", "zenodo_retry_delay",
                 "zenodo_recheck", "zenodo_publish_wait"):
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must be >= 0, got {getattr(s, name)!r}")
    if s.batch_size < 1 or s.max_attempts < 1:
        raise ConfigError("settings 'batch_size' and 'max_attempts' must be >= 1")
    if s.network_doorbell not in ("auto", "off"):
        raise ConfigError(f"setting 'network_doorbell' must be 'auto' or 'off', got {s.network_doorbell!r}")
    if s.stale_after <= 2 * s.heartbeat_interval:
        raise ConfigError(
            f"setting 'stale_after' ({s.stale_after}) must exceed twice 'heartbeat_interval' "
            f"({s.heartbeat_interval}), or live workers would be reaped")
    return s


def load(config_file: str | None = None, environ: Mapping[str, str] | None = None,
         **overrides: Any) -> Settings:
    """Read the settings: defaults, then the config file, then DQUEUE_* variables, then overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("DQUEUE_CONFIG")
    if path is None and Path("dqueue.toml").is_file():
        path = "dqueue.toml"
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, value)
    for name in _FIELDS:
        env_value = env.get(f"DQUEUE_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = _coerce(name, env_value)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value)
    return _validated(Settings(**values))
