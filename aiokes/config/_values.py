"""Scalar syntaxes of the config file: slog log levels, yaml.v3 booleans. (Go durations are
:func:`aiokes._go.duration.parse_duration`.)

Each parser takes the text of one YAML scalar (after ``${VAR}`` substitution) and raises
:class:`ValueError` with a message that can be shown to the operator as it is.
"""

from __future__ import annotations

import logging
import re

__all__ = ["parse_bool", "parse_log_level"]

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
