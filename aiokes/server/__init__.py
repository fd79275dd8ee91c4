"""Running the key server: processes, signals, the listener and the operating system.

* :mod:`~aiokes.server.process`: :class:`Server`, one serving process (reload, graceful stop).
* :mod:`~aiokes.server.supervisor` and :mod:`~aiokes.server.children`: ``--workers N``, the
  supervisor and the worker and key-keeper processes it forks (docs/workers.md).
* :mod:`~aiokes.server.listener`: the listening socket and the TLS context.
* :mod:`~aiokes.server.dev`: ``aiokes server --dev``.
* :mod:`~aiokes.server.memory_lock` and :mod:`~aiokes.server.systemd`: ``mlockall`` and the
  systemd notification protocol.

The listen address itself is parsed with the config (:class:`aiokes.config.ListenAddress`).
"""

from __future__ import annotations

from aiokes.server.process import Server

__all__ = ["Server"]
