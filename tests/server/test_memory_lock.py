"""mlockall keeps key material out of swap; where it is not permitted, the reason is clear."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mlockall is Linux-only here")
def test_lock_memory_locks_the_process_pages_or_says_why() -> None:
    # In a child process: MCL_FUTURE would otherwise lock every later page of the test run.
    script = textwrap.dedent(
        """
        from aiokes.server.memory_lock import lock_memory
        problem = lock_memory()
        locked = next(l for l in open("/proc/self/status") if l.startswith("VmLck:"))
        print(repr(problem), int(locked.split()[1]))
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    problem, locked_kib = output[0], int(output[-1])
    if os.geteuid() == 0:  # root has CAP_IPC_LOCK: the lock must take
        assert problem == "None"
        assert locked_kib > 0
    else:
        assert problem == "None" or "CAP_IPC_LOCK" in " ".join(output[:-1])
