"""What a setting's value may be: numeric ranges (``Limit``) and types, given as text or typed.

Shared by config.py's Settings and the capabilities' settings sections (config.section), so that
every setting is checked by the same rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

TEN_YEARS = 10 * 365 * 86400.0  # any longer wait overflows sleep() or a datetime: a typo, not a plan
INT_MAX = 2 ** 31 - 1  # the INT columns these are compared with


@dataclass(frozen=True)
class Limit:
    """A finite number above ``low`` (or equal to it if ``inclusive``), at most ``high``: NaN and
    the infinities are never admitted (NaN compares false with everything, so it slips past ``<=``)."""
    low: float
    inclusive: bool = False
    high: float = TEN_YEARS
    least: float | None = None  # the smallest value admitted above an exclusive ``low``

    def admits(self, value: float) -> bool:
        above = value >= self.low if self.inclusive else value > self.low
        enough = self.least is None or value >= self.least
        return math.isfinite(value) and above and enough and value <= self.high

    def __str__(self) -> str:
        high = int(self.high) if self.high == int(self.high) else self.high
        least = "" if self.least is None else f" (at least {self.least:g})"
        return f"{'>=' if self.inclusive else '>'} {self.low:g}{least} and <= {high}"


POSITIVE = Limit(0)  # a duration that must pass: zero would spin
POLL = Limit(0, least=0.001)  # a period of queries: below 1 ms it is a busy loop on the database
ZERO_OK = Limit(0, inclusive=True)  # zero means "no wait" or "off"
COUNT = Limit(1, inclusive=True, high=INT_MAX)
COUNT_OR_OFF = Limit(0, inclusive=True, high=INT_MAX)


# --- Types: what a value may be, given as text (environment) or typed (TOML, Python) -----------

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_text(kind: str, text: str) -> Any:
    """A value given as text (an environment variable) as the setting's type; ValueError if not."""
    if kind == "tuple[str, ...]":
        return tuple(v.strip() for v in text.split(",") if v.strip())
    if kind == "bool":
        word = text.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ValueError(f"not a boolean (use one of {', '.join(_TRUE + _FALSE)})")
        return word in _TRUE
    if kind == "int":
        try:
            return int(text.strip())  # "2.7" is refused, not truncated
        except ValueError:
            raise ValueError("not an integer") from None
    if kind == "float":
        return float(text.strip())  # nan and inf parse here and are refused by LIMITS
    return text


def typed(kind: str, value: Any) -> Any:
    """A typed value (TOML, Python) if it has the setting's type; ints are floats too."""
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            return parse_text(kind, value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError("must be a list of strings or a comma-separated string")
    wanted, what = _TYPES[kind]
    if isinstance(value, bool) and kind != "bool" or not isinstance(value, wanted):
        raise ValueError(f"must be {what}, not {type(value).__name__}")
    return float(cast(float, value)) if kind == "float" else value


_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "true or false"), "int": ((int,), "an integer"),
    "float": ((int, float), "a number"), "str": ((str,), "a string")}
