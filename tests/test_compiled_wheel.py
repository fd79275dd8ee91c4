"""hatch_build.py, the opt-in compiled build: the PEP 517/660 hooks pip calls, run on a git
copy of the source tree. ``AIOKES_COMPILE=1`` makes a CPython-tagged wheel carrying the
request path as extension modules and writes nothing in the tree; without it the wheel is
pure Python; an editable install with it refuses rather than compile nothing silently.

The hooks run in the suite's own environment (the ``dev`` extra brings hatchling and mypy),
as ``pip wheel --no-build-isolation`` would run them. The compiled run of .ci/run tests an
installed wheel, away from the source tree: there these tests have nothing to build from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiokes.build import REQUEST_PATH

ROOT = Path(__file__).resolve().parent.parent
# What the build reads: the package, its metadata, the hook, the readme the metadata names.
SOURCES = ["aiokes", "pyproject.toml", "hatch_build.py", "README.md", ".gitignore"]

pytestmark = [
    pytest.mark.skipif(
        not (ROOT / "hatch_build.py").is_file() or not (ROOT / "aiokes").is_dir(),
        reason="no source tree here: this run tests an installed wheel",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="git checks the tree is untouched"),
]


@dataclass
class Tree:
    path: Path
    scratch: Path  # TMPDIR of the builds: the hook's temporary copy goes here

    def hook(self, name: str, *, compile: bool) -> subprocess.CompletedProcess[str]:
        """Call hatchling's ``name`` hook (``build_wheel(dist)``, …) as pip does, in the tree;
        its result is the last line of standard output."""
        environment = {**os.environ, "TMPDIR": str(self.scratch)}
        environment.pop("AIOKES_COMPILE", None)
        if compile:
            environment["AIOKES_COMPILE"] = "1"
        script = "import sys, hatchling.build as b; print(getattr(b, sys.argv[1])(*sys.argv[2:]))"
        dist = str(self.scratch.parent / "dist")
        arguments = [dist] if name.startswith("build_") else []
        return subprocess.run(
            [sys.executable, "-c", script, name, *arguments],
            cwd=self.path, env=environment, capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip

    def wheel(self, *, compile: bool) -> Path:
        done = self.hook("build_wheel", compile=compile)
        assert done.returncode == 0, done.stdout + done.stderr
        return self.scratch.parent / "dist" / done.stdout.splitlines()[-1]

    def git_status(self) -> str:
        return _git(self.path, "status", "--porcelain", "--ignored")


def _git(path: Path, *arguments: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *arguments]
    return subprocess.run(
        command, cwd=path, capture_output=True, text=True, timeout=60, check=True
    ).stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    base = tmp_path_factory.mktemp("build")
    path = base / "aiokes-tree"
    path.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.so")
            shutil.copytree(source, path / name, ignore=ignore)
        else:
            shutil.copy2(source, path / name)
    _git(path, "init", "-q")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "the tree as the build finds it")
    (base / "tmp").mkdir()
    return Tree(path, base / "tmp")


def _extension_names() -> set[str]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return {name.replace(".", "/") + suffix for name in REQUEST_PATH} | {f"aiokes__mypyc{suffix}"}


def test_without_the_variable_the_wheel_is_pure_python(tree: Tree) -> None:
    requires = tree.hook("get_requires_for_build_wheel", compile=False)
    assert "mypy" not in requires.stdout
    wheel = tree.wheel(compile=False)
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "aiokes/http/connection.py" in names
    assert [name for name in names if name.endswith(".so")] == []


def test_the_compiler_is_a_build_requirement_only_when_compiling(tree: Tree) -> None:
    requires = tree.hook("get_requires_for_build_wheel", compile=True)
    assert "'mypy==" in requires.stdout  # pinned: its version decides the C code
    assert "'setuptools" in requires.stdout


def test_an_editable_install_with_the_variable_says_it_compiles_nothing(tree: Tree) -> None:
    done = tree.hook("build_editable", compile=True)
    assert done.returncode != 0
    assert "AIOKES_COMPILE=1 compiles nothing in an editable install" in done.stderr


def test_the_compiled_wheel_carries_the_request_path_and_the_tree_is_untouched(
    tree: Tree,
) -> None:
    before = tree.git_status()
    wheel = tree.wheel(compile=True)
    assert tree.git_status() == before == ""  # no .so, build/ or cache beside the sources
    assert list(tree.scratch.iterdir()) == []  # and the hook's temporary copy is gone
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{python}-{python}-" in wheel.name  # for this CPython only, as its ABI is
    names = set(zipfile.ZipFile(wheel).namelist())
    assert _extension_names() <= names
    assert "aiokes/http/connection.py" in names  # sources stay, for tracebacks and reading
    installed = tree.scratch.parent / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    described = subprocess.run(
        [sys.executable, "-c", "import aiokes.build as b; print(b.describe())"],
        cwd=installed, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    expected = f"request path: compiled with mypyc ({len(REQUEST_PATH)} modules)"
    assert described.stdout.strip() == expected
