"""A CPU quota for the servers under test: a cgroup they run in, capped to part of a core.

On a 2-core machine one vegeta core cannot saturate the fastest servers pinned to the other
core (the loader reaches its core's limit first), so req/s would measure the loader. Capping
every server to the same share of its core (``bench saturate --server-quota 0.5``) saturates
each of them with the loader to spare: then req/s per share is throughput per core, and the
loader's column shows it is not the limit. The kernel's CFS quota throttles a server that
used its share of a period, which makes latency figures meaningless in that mode (p99 is
measured with ``--rate`` instead).

Needs root and the cgroup ``cpu`` controller: v1 (``/sys/fs/cgroup/cpu``) or v2.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["CpuQuota", "QuotaError"]

_PERIOD_US = 100_000  # the kernel's default CFS period
_V1_ROOT = Path("/sys/fs/cgroup/cpu")
_V2_ROOT = Path("/sys/fs/cgroup")
# Moves the shell into the cgroup, then becomes the server: everything the server starts
# (workers, threads) is in the cgroup from its first instruction.
_ENTER = 'echo $$ > "$0" && exec "$@"'


class QuotaError(Exception):
    """The quota cannot be set up here (not root, no cpu controller)."""


class CpuQuota:
    """A cgroup capped to ``cores`` CPUs (0 < cores); ``wrap`` an argv to run in it."""

    def __init__(self, cores: float, name: str | None = None) -> None:
        if not 0 < cores <= (os.cpu_count() or 1):
            raise QuotaError(f"a quota of {cores:g} cores is not between 0 and the machine's")
        self.cores = cores
        name = name or f"aiokes-bench-{os.getpid()}"
        self.directory, self._procs = _create(name, round(cores * _PERIOD_US))

    def wrap(self, argv: list[str]) -> list[str]:
        return ["sh", "-c", _ENTER, str(self._procs), *argv]

    def remove(self) -> None:
        """Remove the cgroup (its processes must have exited)."""
        with contextlib.suppress(OSError):  # in use or gone: an empty cgroup does no harm
            self.directory.rmdir()


def _create(name: str, quota_us: int) -> tuple[Path, Path]:
    """Make the cgroup; its directory and the file a process writes its pid to, to join."""
    try:
        if (_V1_ROOT / "cpu.cfs_quota_us").exists():
            directory = _V1_ROOT / name
            directory.mkdir(exist_ok=True)
            (directory / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
            (directory / "cpu.cfs_quota_us").write_text(str(quota_us))
        elif "cpu" in (_V2_ROOT / "cgroup.controllers").read_text().split():
            directory = _V2_ROOT / name
            directory.mkdir(exist_ok=True)
            (directory / "cpu.max").write_text(f"{quota_us} {_PERIOD_US}")
        else:
            raise QuotaError("no cgroup cpu controller (v1 /sys/fs/cgroup/cpu or v2)")
    except OSError as exc:
        raise QuotaError(f"cannot set up a CPU quota ({exc}); it needs root") from None
    return directory, directory / "cgroup.procs"
