"""Keep key material out of swap with ``mlockall`` (Linux), as KES does at start-up."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys

__all__ = ["lock_memory"]

_MCL_CURRENT = 1
_MCL_FUTURE = 2
_MCL_ONFAULT = 4


def lock_memory() -> str | None:
    """Lock current and future pages. Returns ``None`` on success, else why it failed
    (typically: no CAP_IPC_LOCK, or RLIMIT_MEMLOCK too small)."""
    if not sys.platform.startswith("linux"):
        return "mlockall is only supported on Linux"
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    # MCL_ONFAULT (Linux 4.4+) locks pages as they are first touched instead of at once: with
    # plain MCL_FUTURE every idle TLS connection's 256 KiB buffer became resident (bench/).
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) == 0:
        return None
    if ctypes.get_errno() == errno.EINVAL and libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
        return None  # an older kernel without MCL_ONFAULT
    return f"{os.strerror(ctypes.get_errno())} (grant CAP_IPC_LOCK or raise LimitMEMLOCK)"
