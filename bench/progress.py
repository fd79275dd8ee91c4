"""One status line on stderr, rewritten in place while a measurement runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Shows elapsed time, answered and failed requests and the current rate of one run.

    ``counters`` is the shared array the load processes publish to: ``[ok, failed]`` per
    process. On a terminal the line is redrawn; elsewhere (CI logs) only the final line is
    written, so logs stay readable.
    """

    def __init__(self, label: str, seconds: float, stream: TextIO | None = None) -> None:
        self.label = label
        self.seconds = seconds
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._rate = 0.0
        self._width = 0

    def update(self, counters: Sequence[int], *, final: bool = False) -> None:
        ok = sum(counters[0::2])
        failed = sum(counters[1::2])
        now = time.monotonic()
        then, before = self._last
        if now - then >= 0.5:
            self._rate = (ok - before) / (now - then)
            self._last = (now, ok)
        elapsed = min(now - self._started, self.seconds)
        line = (
            f"{self.label}: {elapsed:5.1f}/{self.seconds:.0f}s  ok {ok:,}  failed {failed:,}"
            f"  {self._rate:,.0f} req/s"
        )
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        if final:
            self.stream.write(("\r" if self.live else "") + line.ljust(self._width) + "\n")
        self.stream.flush()
