"""Hatchling build hook: ``AIOKES_COMPILE=1`` puts the request path, compiled by mypyc, in a
standard wheel (README, "The compiled build"); without the variable it does nothing.

Why not hatch-mypyc: it runs ``build_ext --inplace`` in the project root, leaving ``.so``
files beside the sources, which an editable install or the test suite (pytest's
``pythonpath = ["."]``) would then import instead of the ``.py`` files being edited. This
hook compiles a copy of the package in a temporary directory and adds only the extension
modules it built to the wheel; the source tree is never written to.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.builders.wheel import WheelBuilderConfig

ENABLE_VARIABLE = "AIOKES_COMPILE"
# Build requirements only when compiling. mypy is pinned: its version decides the C code.
COMPILER_REQUIREMENTS = ["mypy==2.4.1", "setuptools>=65"]
PACKAGE = "aiokes"
MODULE_LIST = Path(PACKAGE, "build.py")  # REQUEST_PATH, shared with the running server

# Run in the temporary copy by the interpreter of the build environment. mypycify type-checks
# with the project's mypy settings (argv[1]) and writes C into ./build; --inplace puts each
# extension beside its copied .py and mypyc's shared library, aiokes__mypyc, at the top.
_SETUP_SCRIPT = """\
import os, sys
from mypyc.build import mypycify
from setuptools import setup

setup(
    name="aiokes-request-path",
    ext_modules=mypycify(
        ["--config-file", sys.argv[1], *sys.argv[2:]], opt_level="3", group_name="aiokes"
    ),
    script_args=["build_ext", "--inplace", "--parallel", str(os.cpu_count() or 1)],
)
"""


def compile_requested() -> bool:
    return os.environ.get(ENABLE_VARIABLE, "") == "1"


def request_path(root: Path) -> list[str]:
    """The dotted module names of ``REQUEST_PATH`` in aiokes/build.py, read without importing
    aiokes (its dependencies are not in the build environment)."""
    tree = ast.parse((root / MODULE_LIST).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "REQUEST_PATH" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise RuntimeError(f"{MODULE_LIST} has no REQUEST_PATH")


def compile_copy(root: Path, workdir: Path, modules: list[str]) -> dict[str, str]:
    """Compile ``modules`` in a copy of the package under ``workdir``; map each extension
    module built (absolute path) to its path in the wheel."""
    shutil.copytree(
        root / PACKAGE, workdir / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    sources = [str(Path(*name.split("."))) + ".py" for name in modules]
    command = [sys.executable, "-c", _SETUP_SCRIPT, str(root / "pyproject.toml"), *sources]
    done = subprocess.run(command, cwd=workdir, check=False)  # noqa: S603 (our own argv)
    if done.returncode != 0:
        raise RuntimeError(f"mypyc could not compile the request path (exit {done.returncode})")
    return built_extensions(workdir, modules)


def built_extensions(workdir: Path, modules: list[str]) -> dict[str, str]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    wanted = [Path(*name.split(".")).with_suffix(suffix) for name in modules]
    shared = Path(f"{PACKAGE}__mypyc{suffix}")  # the code of every module, one library
    missing = [str(path) for path in [*wanted, shared] if not (workdir / path).is_file()]
    if missing:
        raise RuntimeError(f"mypyc built no {', '.join(missing)} in {workdir}")
    return {str(workdir / path): path.as_posix() for path in [*wanted, shared]}


class CompileRequestPath(BuildHookInterface[WheelBuilderConfig]):  # the wheel target's hook
    PLUGIN_NAME = "custom"

    _workdir: Path | None = None

    def dependencies(self) -> list[str]:
        # Asked before initialize() knows whether the wheel is editable: an editable build
        # with the variable set installs the compiler, then initialize() refuses it.
        return list(COMPILER_REQUIREMENTS) if compile_requested() else []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if not compile_requested():
            return
        if version != "standard":
            raise RuntimeError(
                f"{ENABLE_VARIABLE}=1 compiles nothing in an editable install: it would run the "
                f".py files of the source tree. Unset {ENABLE_VARIABLE}, or install without -e "
                f"(pip install .) to get the compiled build."
            )
        self._workdir = Path(tempfile.mkdtemp(prefix="aiokes-mypyc-"))
        modules = request_path(Path(self.root))
        self.app.display_info(f"compiling {len(modules)} modules with mypyc in {self._workdir}")
        try:
            build_data["force_include"].update(
                compile_copy(Path(self.root), self._workdir, modules)
            )
        except BaseException:
            self._remove_workdir()
            raise
        build_data["pure_python"] = False  # platlib, and a wheel tag naming CPython's ABI
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        self._remove_workdir()  # the wheel holds the extension modules now

    def _remove_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
