"""A directory this process cannot write to, as root too (CI runs as root).

Root ignores permission bits, so for root the directory is made immutable (``chattr +i``,
which needs ``CAP_LINUX_IMMUTABLE``); anyone else gets mode 0500. Both are real kernel
refusals: ``open(O_CREAT)`` and ``unlink`` fail and ``access(W_OK)`` says no.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["read_only_directory"]


@contextmanager
def read_only_directory(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable for this process until the block ends."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a directory read-only")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)
