"""Where a setting's value came from (default, file, environment, option, code), so that an
error names the place to fix: ``setting 'sleep_delay' from option --sleep-delay: …``."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class SourceKind(enum.Enum):
    DEFAULT = "default"
    FILE = "file"
    ENVIRONMENT = "environment"
    OPTION = "option"
    CODE = "Python code"  # Settings(...) or load(...) called with a value by a program


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from, as an error message names it."""
    kind: SourceKind
    where: str = ""  # the option, the variable or the file

    def __str__(self) -> str:
        return f"{self.kind.value} {self.where}".rstrip()


DEFAULT = Source(SourceKind.DEFAULT)
CODE = Source(SourceKind.CODE)


OPTION_NAMES = {"imports": "--import"}  # where the option is not the setting's name


def option_source(name: str) -> Source:
    return Source(SourceKind.OPTION, OPTION_NAMES.get(name, "--" + name.replace("_", "-")))


def environment_source(name: str) -> Source:
    return Source(SourceKind.ENVIRONMENT, f"DQUEUE_{name.upper()}")
