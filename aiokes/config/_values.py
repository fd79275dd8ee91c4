"""Scalar syntaxes of the config file: Go durations, slog log levels, yaml.v3 booleans.

Each parser takes the text of one YAML scalar (after ``${VAR}`` substitution) and raises
:class:`ValueError` with a message that can be shown to the operator as it is.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal

__all__ = ["parse_bool", "parse_duration", "parse_log_level"]

# Go's time.ParseDuration units, in nanoseconds ("µ" is U+00B5, "μ" is U+03BC; Go takes both).
_UNIT_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
# A Go time.Duration is an int64 of nanoseconds (~292 years).
_MAX_DURATION_NANOSECONDS = (1 << 63) - 1
_NANOSECONDS_PER_SECOND = Decimal(1_000_000_000)


def parse_duration(text: str) -> float:
    """Parse a Go duration (``"5m0s"``, ``"1.5h"``, ``"300ms"``, ``"0"``) into seconds.

    Negative durations are rejected: no setting of the config file has a use for them.
    """
    body = text.strip()
    sign = ""
    if body[:1] in ("+", "-"):
        sign, body = body[0], body[1:]
    if body == "0":
        return 0.0
    nanoseconds = _duration_nanoseconds(body, original=text)
    if sign == "-" and nanoseconds:
        raise ValueError(f"invalid duration '{text}': must not be negative")
    if nanoseconds > _MAX_DURATION_NANOSECONDS:
        raise ValueError(f"invalid duration '{text}': too large")
    return float(nanoseconds / _NANOSECONDS_PER_SECOND)


def _duration_nanoseconds(body: str, *, original: str) -> Decimal:
    if not body:
        raise ValueError(f"invalid duration '{original}'")
    total = Decimal(0)
    position = 0
    while position < len(body):
        match = _DURATION_COMPONENT.match(body, position)
        if match is None:
            raise ValueError(_duration_problem(body, position, original))
        number, unit = match.groups()
        total += Decimal(number) * _UNIT_NANOSECONDS[unit]
        position = match.end()
    # Go truncates fractions of a nanosecond.
    return Decimal(int(total))


def _duration_problem(body: str, position: int, original: str) -> str:
    rest = body[position:]
    if re.fullmatch(r"\d+\.?\d*|\.\d+", rest):
        return f"invalid duration '{original}': missing unit (one of h, m, s, ms, us, ns)"
    return f"invalid duration '{original}' (Go syntax, e.g. 30s, 5m0s, 1h30m)"


# slog's named levels; a Python level is 20 + slog * 10 / 4 (DEBUG=10 ... ERROR=40).
_SLOG_LEVELS = {"DEBUG": -4, "INFO": 0, "WARN": 4, "ERROR": 8}
_SIGNED_INTEGER = re.compile(r"[+-]?\d+")


def parse_log_level(text: str) -> int | None:
    """Parse a KES log level (spec §6.3) into a Python :mod:`logging` level.

    ``""``, ``on`` and ``info`` are INFO (20); ``off`` disables the log (``None``); ``debug``,
    ``warn`` and ``error`` map to DEBUG, WARNING and ERROR; ``LEVEL+N`` and a bare integer are
    slog levels, mapped linearly (``INFO+2`` = 25, ``-4`` = DEBUG, ``ERROR+1`` = 42).
    """
    level = text.strip().upper()
    if level in ("", "ON"):
        return logging.INFO
    if level == "OFF":
        return None
    return _python_level(_slog_level(level, original=text))


def _slog_level(level: str, *, original: str) -> int:
    for name, base in _SLOG_LEVELS.items():
        if level == name:
            return base
        if level.startswith(name):
            return base + _level_offset(level, name, original=original)
    if _SIGNED_INTEGER.fullmatch(level):
        return int(level)
    raise ValueError(f"invalid log level '{original}' (off, debug, info, warn, error, INFO+2, -4)")


def _level_offset(level: str, name: str, *, original: str) -> int:
    # KES accepts exactly NAME+N (N may carry its own sign); "INFO-2" is not a level there.
    base, plus, offset = level.partition("+")
    if not plus or base.strip() != name or not _SIGNED_INTEGER.fullmatch(offset):
        raise ValueError(f"invalid log level '{original}'")
    return int(offset)


def _python_level(slog_level: int) -> int:
    # Floor division keeps the mapping monotonic for levels between the named ones.
    return logging.INFO + (slog_level * 10) // 4


# What yaml.v3 accepts when it decodes into a Go bool: YAML 1.2 true/false plus the YAML 1.1
# words. We compare case-insensitively, which is a superset of both.
_TRUE_WORDS = frozenset({"true", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "off"})


def parse_bool(text: str) -> bool:
    """Parse a boolean: true/false, yes/no, on/off (any case)."""
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"invalid boolean '{text}' (true/false, yes/no, on/off)")
