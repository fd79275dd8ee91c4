"""Which build runs (aiokes/build.py): the suite expects the interpreted one, unless
``AIOKES_TEST_EXPECT_COMPILED=1`` (set by .ci/run when it runs the suite against an installed
compiled wheel): then every module of the request path must be an extension module."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from aiokes import build
from tests.server_process import server_setup, spawn_server, stop_process

EXPECT_COMPILED = os.environ.get("AIOKES_TEST_EXPECT_COMPILED") == "1"
EXPECTED = (
    f"request path: compiled with mypyc ({len(build.REQUEST_PATH)} modules)"
    if EXPECT_COMPILED
    else "request path: interpreted"
)


def test_the_request_path_runs_as_expected() -> None:
    assert build.compiled_modules() == (build.REQUEST_PATH if EXPECT_COMPILED else ())
    assert build.describe() == EXPECTED


@pytest.mark.parametrize("name", build.REQUEST_PATH)
def test_each_module_of_the_request_path_is_imported_from_the_expected_file(name: str) -> None:
    """What is imported, not only what could be: a compiled module shadowed by its .py (or
    the reverse, a stale .so in the source tree) fails here."""
    file = importlib.import_module(name).__file__
    assert file is not None
    compiled = file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert compiled == EXPECT_COMPILED, file


def test_the_request_path_names_modules_that_exist() -> None:
    for name in build.REQUEST_PATH:
        assert importlib.util.find_spec(name) is not None, name


def test_the_description_counts_the_compiled_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "compiled_modules", lambda: ("aiokes.a", "aiokes.b"))
    assert build.describe() == "request path: compiled with mypyc (2 modules)"
    monkeypatch.setattr(build, "compiled_modules", tuple)
    assert build.describe() == "request path: interpreted"


def test_aiokes_version_names_the_build() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiokes", "--version"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip().endswith(f"({EXPECTED})")


async def test_the_server_banner_names_the_build(tmp_path: Path, tls_ca: trustme.CA) -> None:
    setup = server_setup(tmp_path, tls_ca, f"keystore:\n  fs:\n    path: {tmp_path}/keys\n")
    lines: list[str] = []
    process, _ = await spawn_server(setup.config_file, lines=lines)
    await stop_process(process)
    assert f"Build       {EXPECTED}\n" in lines
