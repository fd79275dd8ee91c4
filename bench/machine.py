"""What a result was measured on: cores, CPU model, software versions, commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import ssl
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["describe_machine", "session_cpu_seconds", "usable_cpus"]

_REPO = Path(__file__).resolve().parent.parent
_PACKAGES = ("aiohttp", "uvloop", "cryptography", "aiokes")


def usable_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def describe_machine() -> dict[str, object]:
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": len(usable_cpus()),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "openssl": ssl.OPENSSL_VERSION,
        "packages": {name: _version(name) for name in _PACKAGES},
        "commit": _commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(_REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def session_cpu_seconds(session: int) -> float:
    """User + system CPU seconds of every live process in session ``session`` (a server the
    harness started in its own session: the supervisor and all its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        # After the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime …
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / ticks
