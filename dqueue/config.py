"""One frozen settings object, read once from defaults < config file < environment < flags.

The config file is TOML (Python's own tomllib), found at ``--config``, ``$DQUEUE_CONFIG`` or
``./dqueue.toml``.  Every key can also be given as ``DQUEUE_<KEY>`` in the environment.

Each external system has a typed section (``settings.zenodo``, ``settings.merritt``): a frozen
dataclass that its capability registers with ``@section("merritt")``.  Its fields are settings
like any other, named ``merritt_<field>`` (``DQUEUE_MERRITT_PASSWORD``, ``merritt_password = …``)
or given in a TOML table (``[merritt]`` ``password = …``), and validated by the same rules below;
a field with ``SECRET`` metadata is masked everywhere.  Zenodo's fields are also plain Settings
fields (``settings.zenodo_token``), as they were before sections existed.

Every value is checked once, when a Settings is made (``load``, ``replace`` or the constructor),
against its type and the LIMITS table; an error names the setting and where its value came from.
Nothing is coerced: ``batch_size = 2.7`` is an error, not 2 (issue 7: ``--sleep-delay nan`` made an
idle worker poll ~8,700 times a second).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from . import doorbell
from .config_sections import _SECTION_FIELDS, _SECTION_RULES, _SECTIONS, register_sections, section, sections  # noqa: F401
from .config_sources import (  # noqa: F401  (part of config's interface)
    CODE,
    DEFAULT,
    Source,
    SourceKind,
    environment_source,
    option_source,
)
from .config_values import (  # noqa: F401  (part of config's interface)
    COUNT,
    COUNT_OR_OFF,
    INT_MAX,
    POLL,
    POSITIVE,
    TEN_YEARS,
    ZERO_OK,
    Limit,
    parse_text,
    typed,
)

DEFAULT_SQLITE_PATH = Path("var") / "dqueue.sqlite3"
BACKENDS = ("sqlite", "mysql", "mariadb")


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range; ``source`` says where it was given."""

    def __init__(self, message: str, source: Source | None = None) -> None:
        super().__init__(message)
        self.source = source


# Field metadata of a setting whose value must never be shown: the one masker learns every such
# value (secret_values) and hides it in log lines, last_error, error_info and stored tracebacks.
SECRET = {"secret": True}
_INTERNAL = {"internal": True}  # not a setting: bookkeeping of the Settings object


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
    doorbell_dir: str = ""  # "": /run/dqueue or <tmp>/dqueue-<uid> (doorbell.py); "off": polling only
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
    # The fields of registered sections that are not Settings fields, by flat name (merritt_user).
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False, metadata=_INTERNAL)
    # Where each value came from (absent: the default), for error messages.
    sources: Mapping[str, Source] = field(default_factory=dict, repr=False, compare=False,
                                          metadata=_INTERNAL)

    def __post_init__(self) -> None:
        _validate(self)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a section (settings.merritt) or one of its flat names.
        if name.startswith("_") or name in ("extra", "sources"):
            raise AttributeError(name)
        register_sections()
        if name in _SECTIONS:
            return self.section(name)
        if name in _SECTION_FIELDS:
            return self.__dict__.get("extra", {}).get(name, _default(_SECTION_FIELDS[name]))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def section(self, name: str) -> Any:
        """The typed settings object of system ``name`` (``[name]`` in the config file)."""
        register_sections()
        spec = _SECTIONS.get(name)
        if spec is None:
            raise ConfigError(f"no settings section {name!r} (registered: {', '.join(sorted(_SECTIONS))})")
        return spec.cls(**{f.name: getattr(self, f"{name}_{f.name}") for f in dataclasses.fields(spec.cls)})

    def doorbell_folder(self) -> Path | None:
        return doorbell.directory(self.doorbell_dir, self.resolved_database_url())

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"

    def source(self, name: str) -> Source:
        if name in self.sources:
            return self.sources[name]
        f = _FIELDS.get(name) or _SECTION_FIELDS[name]
        return DEFAULT if getattr(self, name) == _default(f) else CODE

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the given non-None values applied and validated; their source is the
        command-line option of the same name (what the CLI overrides)."""
        register_sections()
        clean = {k: v for k, v in changes.items() if v is not None}
        unknown = set(clean) - set(_FIELDS) - set(_SECTION_FIELDS)
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}")
        sources = {**self.sources, **{k: option_source(k) for k in clean}}
        extra = {**self.extra, **{k: v for k, v in clean.items() if k in _SECTION_FIELDS}}
        plain = {k: v for k, v in clean.items() if k in _FIELDS}
        return dataclasses.replace(self, **plain, extra=extra, sources=sources)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")}


def _default(f: dataclasses.Field[Any]) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def secret_values(settings: Settings) -> list[str]:
    """The values of every setting marked SECRET that is set, sections' included; a list setting
    (``web_tokens``) gives each of its items."""
    register_sections()
    fields = list(_FIELDS.values()) + list(_SECTION_FIELDS.values())
    names = list(_FIELDS) + list(_SECTION_FIELDS)
    found: list[str] = []
    for name, f in zip(names, fields, strict=True):
        value = getattr(settings, name) if f.metadata.get("secret") else None
        if isinstance(value, tuple):
            found.extend(str(v) for v in value if v)
        elif value:
            found.append(str(value))
    return found


# --- The range of every numeric setting ----------------------------------------------------------

LIMITS: dict[str, Limit] = {
    "sleep_delay": POLL,
    "batch_size": Limit(1, inclusive=True, high=1000),  # as --batch-size
    "prefetch_hold": POSITIVE,
    "priority_refresh": POLL,
    "heartbeat_interval": POLL,
    "stale_after": POSITIVE,
    "grace_period": POSITIVE,
    "kill_after": ZERO_OK,
    "max_jobs_per_worker": COUNT_OR_OFF,
    "max_worker_memory": COUNT_OR_OFF,
    "max_attempts": COUNT,
    "max_run_time": POSITIVE,
    "backoff_base": POSITIVE,
    "backoff_max": POSITIVE,
    "zenodo_request_interval": ZERO_OK,
    "zenodo_http_attempts": COUNT,
    "zenodo_http_backoff": ZERO_OK,
    "zenodo_timeout": POSITIVE,
    "zenodo_max_retries": COUNT,
    "zenodo_retry_delay": ZERO_OK,
    "zenodo_recheck": POSITIVE,
    "zenodo_publish_wait": ZERO_OK,
}
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": tuple(name for name in logging.getLevelNamesMapping() if name != "NOTSET"),
    "network_doorbell": ("auto", "off"),
}
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # absolute, dotted
NON_EMPTY = ("hostname", "pid_dir", "log_dir", "flag_dir", "zenodo_url")


# --- Validation -----------------------------------------------------------------------------------

def _error(s: Settings, name: str, problem: str) -> ConfigError:
    source = s.source(name)
    return ConfigError(f"setting {name!r} from {source}: {problem}", source)


def _validate(s: Settings) -> None:
    for name, f in _FIELDS.items():
        given = getattr(s, name)
        try:
            value = typed(str(f.type), given)
        except ValueError as exc:
            raise _error(s, name, f"{exc}, got {given!r}") from None
        if name in LIMITS and not LIMITS[name].admits(value):
            raise _error(s, name, f"must be {LIMITS[name]}, got {given!r}")
        if name in CHOICES:
            value = value.upper() if name == "log_level" else value
            if value not in CHOICES[name]:
                raise _error(s, name, f"must be one of {', '.join(CHOICES[name])}, got {value!r}")
        if name in NON_EMPTY and not value.strip():
            raise _error(s, name, "must not be empty")
        object.__setattr__(s, name, value)  # the checked value: 2 -> 2.0, a list -> a tuple
    _validate_sections(s)
    bad_imports = [m for m in s.imports if not MODULE_NAME.fullmatch(m)]
    if bad_imports:
        raise _error(s, "imports", f"not a module name: {bad_imports[0]!r}")
    if s.database_url:
        _check_database_url(s)
    if urlsplit(s.zenodo_url).scheme not in ("http", "https") or not urlsplit(s.zenodo_url).netloc:
        raise _error(s, "zenodo_url", f"must be an http:// or https:// URL, got {s.zenodo_url!r}")
    if s.stale_after <= 2 * s.heartbeat_interval:
        given = "stale_after" if s.source("stale_after") != DEFAULT else "heartbeat_interval"
        raise ConfigError(
            f"setting 'stale_after' ({s.stale_after}, from {s.source('stale_after')}) must exceed twice "
            f"'heartbeat_interval' ({s.heartbeat_interval}, from {s.source('heartbeat_interval')}), "
            "or live workers would be reaped", s.source(given))


def _validate_sections(s: Settings) -> None:
    """The sections' own fields (Settings.extra), by the same rules, each from its metadata."""
    register_sections()
    unknown = set(s.extra) - set(_SECTION_FIELDS)
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}")
    checked: dict[str, Any] = {}
    for name, f in _SECTION_FIELDS.items():
        given = s.extra.get(name, _default(f))
        try:
            value = typed(str(f.type), given)
        except ValueError as exc:
            raise _error(s, name, f"{exc}, got {given!r}") from None
        checked[name] = value
    object.__setattr__(s, "extra", checked)
    for name, rules in _SECTION_RULES.items():
        value = getattr(s, name)
        limit = rules.get("limit")
        if limit is not None and not limit.admits(value):
            raise _error(s, name, f"must be {limit}, got {value!r}")
        if "choices" in rules and value not in rules["choices"]:
            raise _error(s, name, f"must be one of {', '.join(rules['choices'])}, got {value!r}")
        if rules.get("non_empty") and not str(value).strip():
            raise _error(s, name, "must not be empty")
        if rules.get("url") and value and (urlsplit(value).scheme not in ("http", "https")
                                           or not urlsplit(value).netloc):
            raise _error(s, name, f"must be an http:// or https:// URL, got {value!r}")


def _check_database_url(s: Settings) -> None:
    # The URL itself is never repeated: it may hold a password.
    example = "e.g. mysql+pymysql://user:password@host/db or sqlite:///path/to/file"
    try:
        url = make_url(s.database_url)
        port = url.port
    except (ArgumentError, ValueError):
        raise _error(s, "database_url", f"not a database URL ({example})") from None
    if url.get_backend_name() not in BACKENDS:
        raise _error(s, "database_url", f"unsupported database {url.drivername!r}: "
                     "use mysql+pymysql://, mariadb+pymysql:// or sqlite:///") from None
    if port is not None and not 0 < port < 65536:
        raise _error(s, "database_url", f"port {port} is out of range")
    driver = "pymysql" if url.drivername in ("mysql", "mariadb") else None  # what make_engine uses
    try:
        dialect = url.set(drivername=f"{url.drivername}+{driver}" if driver else url.drivername).get_dialect()
    except NoSuchModuleError:
        raise _error(s, "database_url", f"unknown database driver {url.drivername!r} ({example})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise _error(s, "database_url", f"the driver of {url.drivername!r} is not installed ({exc})") from None


# --- Reading --------------------------------------------------------------------------------------

def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):  # [merritt] password = …
            for inner, inner_value in value.items():
                name = f"{key}_{inner}"
                if name not in _FIELDS and name not in _SECTION_FIELDS:
                    raise ConfigError(f"config file {path}: unknown setting {inner!r} in [{key}]",
                                      Source(SourceKind.FILE, path))
                if name in data:
                    raise ConfigError(f"config file {path}: {name} is given twice ({name} and [{key}] {inner})",
                                      Source(SourceKind.FILE, path))
                flat[name] = inner_value
        elif key in _FIELDS or key in _SECTION_FIELDS:
            flat[key] = value
        else:
            raise ConfigError(f"config file {path}: unknown setting {key!r}", Source(SourceKind.FILE, path))
    return flat


def load(config_file: str | None = None, environ: Mapping[str, str] | None = None,
         **overrides: Any) -> Settings:
    """Read the settings: defaults, then the config file, then DQUEUE_* variables, then overrides
    (the command-line options; None means not given)."""
    register_sections()
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    path = config_file or env.get("DQUEUE_CONFIG")
    if path is None and Path("dqueue.toml").is_file():
        path = "dqueue.toml"
    if path:
        for name, value in _read_file(path).items():
            values[name], sources[name] = value, Source(SourceKind.FILE, path)
    for name, f in {**_FIELDS, **_SECTION_FIELDS}.items():
        text = env.get(f"DQUEUE_{name.upper()}")
        if text is None or text == "":
            continue
        sources[name] = environment_source(name)
        try:
            values[name] = parse_text(str(f.type), text)
        except ValueError as exc:
            raise ConfigError(f"setting {name!r} from {sources[name]}: cannot use {text!r} ({exc})",
                              sources[name]) from None
    for name, value in overrides.items():
        if name not in _FIELDS and name not in _SECTION_FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name], sources[name] = value, option_source(name)
    extra = {name: values.pop(name) for name in list(values) if name in _SECTION_FIELDS}
    return Settings(**values, extra=extra, sources=sources)
