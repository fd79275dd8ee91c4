"""Typed, substituted access to one mapping of the config file.

A :class:`Section` wraps a mapping :class:`~aiokes.config._yaml.Node` and reads its keys as
the types the schema wants. Unknown keys are ignored, as KES does. Every value that KES marks
substitutable goes through ``${VAR}`` resolution; an empty or null value means "not set" and
yields the default. Every failure is a :class:`~aiokes.errors.ConfigError` at the key's line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from aiokes._go.duration import parse_duration
from aiokes.config._values import parse_bool
from aiokes.config._yaml import Node
from aiokes.errors import ConfigError

__all__ = ["Section"]

_T = TypeVar("_T")
_INTEGER = re.compile(r"[+-]?\d+")


class Section:
    """One mapping of the config file (a missing or null section reads as empty)."""

    def __init__(self, node: Node, environ: Mapping[str, str]) -> None:
        self.node = node
        self.environ = environ
        self._entries = dict(node.mapping())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Node | None:
        return self._entries.get(name)

    def path(self, name: str) -> str:
        return f"{self.node.key}.{name}" if self.node.key else name

    def section(self, name: str) -> Section:
        """The mapping under ``name``; absent or null reads as an empty section."""
        child = self._entries.get(name)
        if child is None:
            child = Node(kind="null", file=self.node.file, line=self.node.line, key=self.path(name))
        return Section(child, self.environ)

    def error(self, name: str, message: str) -> ConfigError:
        """An error about key ``name``: at its line if present, else at this section's line."""
        node = self._entries.get(name, self.node)
        return ConfigError(message, file=node.file, line=node.line, key=self.path(name))

    def string(self, name: str, default: str = "") -> str:
        """A substitutable string; absent, null or empty gives ``default``."""
        node = self._entries.get(name)
        return default if node is None else (self.text(node) or default)

    def required_string(self, name: str, what: str) -> str:
        """Like :meth:`string`, but absent or empty is an error saying ``what`` is required."""
        value = self.string(name)
        if not value:
            raise self.error(name, f"{what} is required")
        return value

    def text(self, node: Node) -> str:
        """The substituted text of a scalar node; null is ``""``."""
        return node.scalar(self.environ) or ""

    def sequence(self, name: str) -> tuple[Node, ...]:
        node = self._entries.get(name)
        return () if node is None else node.sequence()

    def boolean(self, name: str, default: bool = False) -> bool:
        return self.decode(name, parse_bool, default)

    def duration(self, name: str, default: float) -> float:
        """A Go duration in seconds; negative is an error."""
        return self.decode(name, parse_duration, default)

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.decode(name, _parse_integer, default)
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, not {value}")
        return value

    def decode(self, name: str, parse: Callable[[str], _T], default: _T) -> _T:
        """Parse a substitutable scalar with ``parse``; its ValueError becomes a ConfigError."""
        node = self._entries.get(name)
        text = "" if node is None else self.text(node).strip()
        if node is None or not text:
            return default
        try:
            return parse(text)
        except ValueError as exc:
            raise node.error(str(exc)) from None


def _parse_integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"invalid integer '{text}'")
    return int(text)
