"""The shape of the package (docs/layout.md): modules under 400 lines, no import cycle at
run time, and packages that import only downwards, but for the two named exceptions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import aiokes

ROOT = Path(__file__).resolve().parent.parent
# The package under test: the source tree's, or an installed wheel's .py files when .ci/run
# runs the suite against the compiled build (the same files, beside their extensions).
TREES = {"aiokes": Path(aiokes.__file__).resolve().parent, "bench": ROOT / "bench"}
MAX_LINES = 400
# Lower first; a package may import only those at its rank or below (same-rank imports are
# fine: e.g. http and api do not import each other's internals but stand side by side).
RANKS = {
    "_go": 0, "errors": 0, "__about__": 0, "build": 0,
    "log": 1, "identity": 1, "crypto": 1, "certificate": 2, "_openssl_verify": 3, "tls": 4,
    "policy": 2, "audit": 2, "keystore": 3, "config": 4, "cache": 5, "metrics": 6,
    "keeper": 7, "http": 7, "api": 8, "client": 8, "server": 9, "cli": 10,
    "__init__": 11, "__main__": 11,
}  # fmt: skip
# The config checks api: entries against the one path list, and its cache: section is the
# cache's own settings type; neither module imports anything of its package's upper layers.
UPWARD_ALLOWED = {("config", "aiokes.api.paths"), ("config", "aiokes.cache.settings")}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(TREES["aiokes"].rglob("*.py")):
        parts = path.relative_to(TREES["aiokes"].parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _runtime_imports(path: Path) -> Iterator[str]:
    """The aiokes modules ``path`` imports when it runs (TYPE_CHECKING blocks left out)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiokes"):
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("aiokes"))


@pytest.mark.parametrize("tree", TREES)
def test_every_module_is_under_400_lines(tree: str) -> None:
    long = {
        str(path.relative_to(TREES[tree].parent)): count
        for path in TREES[tree].rglob("*.py")
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycle_at_run_time() -> None:
    modules = dict(_modules())
    graph = {
        name: {m for m in _runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in graph[name]:
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in seen:
                seen.add(target)
                visit(target, [*trail, target])

    seen: set[str] = set()
    for start in graph:
        if start not in seen:
            seen.add(start)
            visit(start, [start])
    assert cycles == []


def test_packages_import_only_downwards() -> None:
    upward = set()
    for name, path in _modules():
        package = name.split(".")[1] if "." in name else "__init__"
        for target in _runtime_imports(path):
            other = target.split(".")[1] if "." in target else "__init__"
            if RANKS[other] > RANKS[package] and not _allowed(package, target):
                upward.add((name, target))
    assert upward == set()


def _allowed(package: str, target: str) -> bool:
    return any(
        package == importer and (target == module or target.startswith(module + "."))
        for importer, module in UPWARD_ALLOWED
    )
