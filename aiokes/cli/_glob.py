"""Go's ``filepath.Match`` on key names, which ``kes migrate`` uses for its PATTERN.

Python's :mod:`fnmatch` differs in ways a KES user would trip over: it negates a class with
``!`` where Go uses ``^``, its ``*`` crosses ``/``, and it knows no ``\\`` escapes.
"""

from __future__ import annotations

import re

__all__ = ["compile_pattern"]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression equivalent to ``pattern``; ``ValueError`` if it is malformed."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "\\":
            if index == len(pattern):
                raise ValueError("pattern ends with an unfinished escape '\\'")
            parts.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            expression, index = _character_class(pattern, index)
            parts.append(expression)
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _character_class(pattern: str, index: int) -> tuple[str, int]:
    """``[…]`` starting after the ``[``: Go's ``^`` negation, ranges and escapes."""
    negate = index < len(pattern) and pattern[index] == "^"
    index += negate
    items: list[str] = []
    while True:
        if index >= len(pattern):
            raise ValueError("pattern has an unclosed '['")
        if pattern[index] == "]" and items:
            break
        low, index = _class_char(pattern, index)
        if index < len(pattern) and pattern[index] == "-":
            high, index = _class_char(pattern, index + 1)
            if high < low:
                raise ValueError(f"pattern has an empty range '{low}-{high}'")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            items.append(re.escape(low))
    body = "".join(items)
    return (f"[^/{body}]" if negate else f"[{body}]"), index + 1


def _class_char(pattern: str, index: int) -> tuple[str, int]:
    if index >= len(pattern) or pattern[index] in "-]":
        raise ValueError("pattern has a malformed character class")
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            raise ValueError("pattern ends with an unfinished escape '\\'")
    return pattern[index], index + 1
