"""Reading the config file: YAML text → a tree of :class:`Node` that know their line and key.

We use ruamel.yaml's *composer* rather than its constructor: the composed graph keeps every
scalar's source text, which is what Go's yaml.v3 decodes into a typed field (``key: 0123`` is
the string ``"0123"`` for a string field, not the integer 83), and it carries positions. Every
node remembers the 1-based line of its key and its dotted key path, so any later check can
raise a :class:`~aiokes.errors.ConfigError` pointing at the offending line.

``${VAR}`` substitution (spec §6.1) lives here too: :meth:`Node.scalar` returns a scalar's
text with a whole-value reference replaced by the variable's value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.nodes import Node as YAMLNode

from aiokes.errors import ConfigError

__all__ = ["Node", "read_yaml"]

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases can make a small file expand into a huge tree ("billion laughs"); no real config
# comes anywhere near this many nodes.
_MAX_NODES = 100_000

Kind = Literal["null", "scalar", "mapping", "sequence"]


@dataclass(frozen=True, slots=True)
class Node:
    """One value of the config file, with where it came from."""

    kind: Kind
    file: str
    line: int  # 1-based line of the key (or of the sequence item)
    key: str  # dotted path from the root: "keystore.fs.path", "policy.app.identities[0]"
    text: str = ""  # scalars only: the source text
    entries: tuple[tuple[str, Node], ...] = ()  # mappings only, in file order
    items: tuple[Node, ...] = ()  # sequences only

    def error(self, message: str) -> ConfigError:
        """A :class:`ConfigError` for this node (to be raised by the caller)."""
        return ConfigError(message, file=self.file, line=self.line, key=self.key)

    def get(self, name: str) -> Node | None:
        """The value of mapping key ``name``; ``None`` if absent. Requires a mapping."""
        for key, value in self.entries:
            if key == name:
                return value
        return None

    def mapping(self) -> Iterator[tuple[str, Node]]:
        """The entries of a mapping; a null value counts as an empty mapping."""
        if self.kind == "null":
            return iter(())
        if self.kind != "mapping":
            raise self.error(f"expected a mapping (key: value), found {_describe(self)}")
        return iter(self.entries)

    def sequence(self) -> tuple[Node, ...]:
        """The items of a sequence; a null value counts as an empty sequence."""
        if self.kind == "null":
            return ()
        if self.kind != "sequence":
            raise self.error(f"expected a list, found {_describe(self)}")
        return self.items

    def scalar(self, environ: Mapping[str, str] | None) -> str | None:
        """The scalar text (``None`` for null), with ``${VAR}`` resolved if ``environ`` is given.

        Pass ``environ=None`` for the values KES never substitutes (policy patterns).
        """
        if self.kind == "null":
            return None
        if self.kind != "scalar":
            raise self.error(f"expected a single value, found {_describe(self)}")
        if environ is None:
            return self.text
        return self._substitute(environ)

    def _substitute(self, environ: Mapping[str, str]) -> str:
        # Only a whole-value reference counts (spaces around and inside the braces allowed);
        # "abc-${X}" stays literal, as in KES.
        stripped = self.text.strip()
        if not (stripped.startswith("${") and stripped.endswith("}")):
            return self.text
        name = stripped[2:-1].strip()
        try:
            return environ[name]
        except KeyError:
            raise self.error(
                f"referenced environment variable '{name}' in line {self.line} is not set"
            ) from None


def read_yaml(text: str, *, file: str) -> Node:
    """Parse one YAML document into a :class:`Node` tree; an empty document is a null node."""
    try:
        document = YAML(typ="rt").compose(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(exc, file, len(text)) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    if document is None:
        return Node(kind="null", file=file, line=1, key="")
    return _Converter(file).convert(document, line=_line_of(document), key="")


def _syntax_error(exc: MarkedYAMLError, file: str, length: int) -> ConfigError:
    # The problem mark is where parsing failed, except when that is the end of the text
    # (an unclosed bracket or quote): then the start of the unfinished construct says more.
    mark = exc.problem_mark
    if mark is None or (mark.index >= length and exc.context_mark is not None):
        mark = exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = ": ".join(part for part in (exc.context, exc.problem) if part)
    return ConfigError(f"invalid YAML: {problem or exc}", file=file, line=line)


def _line_of(node: YAMLNode) -> int:
    return int(node.start_mark.line) + 1


def _describe(node: Node) -> str:
    if node.kind == "scalar":
        return "a single value"
    return "a mapping" if node.kind == "mapping" else "a list"


class _Converter:
    """Turns a composed ruamel graph into :class:`Node` values, checking duplicate keys."""

    def __init__(self, file: str) -> None:
        self._file = file
        self._count = 0
        self._ancestors: set[int] = set()

    def convert(self, node: YAMLNode, *, line: int, key: str) -> Node:
        self._count += 1
        if self._count > _MAX_NODES:
            raise ConfigError("the document expands to too many values", file=self._file)
        if id(node) in self._ancestors:
            raise ConfigError("recursive alias", file=self._file, line=line, key=key)
        self._ancestors.add(id(node))
        try:
            return self._convert(node, line=line, key=key)
        finally:
            self._ancestors.discard(id(node))

    def _convert(self, node: YAMLNode, *, line: int, key: str) -> Node:
        if isinstance(node, MappingNode):
            entries = tuple(self._entries(node, key))
            return Node(kind="mapping", file=self._file, line=line, key=key, entries=entries)
        if isinstance(node, SequenceNode):
            items = tuple(
                self.convert(item, line=_line_of(item), key=f"{key}[{index}]")
                for index, item in enumerate(node.value)
            )
            return Node(kind="sequence", file=self._file, line=line, key=key, items=items)
        assert isinstance(node, ScalarNode)
        if node.tag == _NULL_TAG:
            return Node(kind="null", file=self._file, line=line, key=key)
        return Node(kind="scalar", file=self._file, line=line, key=key, text=str(node.value))

    def _entries(self, node: MappingNode, key: str) -> Iterator[tuple[str, Node]]:
        seen: dict[str, int] = {}
        merged: list[tuple[str, Node]] = []
        for key_node, value_node in node.value:
            line = _line_of(key_node)
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge(value_node, key))
                continue
            name = self._key_text(key_node, key)
            path = f"{key}.{name}" if key else name
            if name in seen:
                raise ConfigError(
                    f"mapping key already defined at line {seen[name]}",
                    file=self._file,
                    line=line,
                    key=path,
                )
            seen[name] = line
            yield name, self.convert(value_node, line=line, key=path)
        # YAML merge keys ("<<: *defaults"): explicit keys win over merged ones.
        for name, value in merged:
            if name not in seen:
                seen[name] = value.line
                yield name, value

    def _merge(self, value: YAMLNode, key: str) -> list[tuple[str, Node]]:
        sources = value.value if isinstance(value, SequenceNode) else [value]
        entries: list[tuple[str, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                raise ConfigError(
                    "a merge key (<<) needs a mapping", file=self._file, line=_line_of(value)
                )
            entries.extend(self._entries(source, key))
        return entries

    def _key_text(self, key_node: YAMLNode, parent: str) -> str:
        if not isinstance(key_node, ScalarNode):
            raise ConfigError(
                "a mapping key must be a single value",
                file=self._file,
                line=_line_of(key_node),
                key=parent,
            )
        return str(key_node.value)
