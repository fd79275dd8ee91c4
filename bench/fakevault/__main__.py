"""Serve the fake Azure Key Vault (:mod:`bench.fakevault.vault`) in its own process.

The ``aiokes-azure`` target runs aiokes on the Azure keystore against this fake, so cache
misses pay a real HTTPS round trip through the Azure code path. Needs ``trustme`` (in the
``bench`` extra).

    python -m bench.fakevault DIRECTORY     # prints "ready <url>", runs until SIGTERM
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from bench.fakevault.vault import FakeVault

__all__ = ["main"]


async def _serve(directory: Path) -> None:
    async with FakeVault.running(directory) as vault:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        # Only now: a SIGTERM right after "ready" must stop the fake cleanly, not kill it.
        print(f"ready {vault.url}", flush=True)
        await stopping.wait()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m bench.fakevault DIRECTORY")
    directory = Path(args[0])
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(directory))


if __name__ == "__main__":
    main()
