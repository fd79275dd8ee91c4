"""The audit log: one JSON line per request, in KES's audit-stream format.

``{"time":…,"request":{"path","method","ip","identity"},"response":{"code","time"}}`` with
``response.time`` in nanoseconds (the LEGACY unit, which kms-go decodes as a Go duration).
Every request is audited, not only key creation (minio/kes#480). Events carry paths,
identities and status codes — never key material.

This is the hottest log line there is (one per request), so it bypasses the logging module:
the line is formatted directly, and lines written during one event-loop iteration go out in a
single write. Profiling showed the logging-module version taking a fifth of the server's CPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import BinaryIO

__all__ = ["AuditLog"]

_REQUEST_PARTS = 4096  # remembered request parts of audit lines (about 1 MB at most)


class AuditLog:
    """Where audit lines go: standard output, a file, or nowhere (``log.audit: off``)."""

    def __init__(self) -> None:
        self._out: BinaryIO | None = None
        self._owned = False  # whether _out is a file we opened (and must close)
        self._pending: list[bytes] = []
        self._second = -1
        self._prefix = b""
        self._requests: dict[tuple[str, str, str, str], bytes] = {}
        self.enabled = False  # whether lines go anywhere; read once per request

    def configure(self, level: int | None, file: str = "") -> None:
        """Audit events are INFO: a level above it (or ``None``, KES's ``off``) disables them.
        Called again on reload: re-opens the file (after log rotation, say)."""
        self.close()
        if level is None or level > logging.INFO:
            return
        if file:
            descriptor = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._out, self._owned = os.fdopen(descriptor, "ab"), True
        else:
            self._out = sys.stdout.buffer
        self.enabled = True

    def line(
        self, ip: str, method: str, path: str, identity: str, status: int, duration: float
    ) -> bytes:
        return self.finish_line(self.request_part(path, method, ip, identity), status, duration)

    def request_part(self, path: str, method: str, ip: str, identity: str) -> bytes:
        """``"request":{…},"response":{"code":`` for one client and path: the part of a line
        that repeats (the same clients ask for the same keys all day), so it is remembered."""
        part = self._requests.get((path, method, ip, identity))
        if part is None:
            part = self._new_request_part(path, method, ip, identity)
        return part

    def finish_line(self, request_part: bytes, status: int, duration: float) -> bytes:
        """The line of a request whose :meth:`request_part` is given, answered now."""
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        micros = int((now - second) * 1e6)
        return b'{"time":"%s.%06dZ",%s%d,"time":%d}}\n' % (
            self._prefix,
            micros,
            request_part,
            status,
            int(duration * 1e9),
        )

    def _new_request_part(self, path: str, method: str, ip: str, identity: str) -> bytes:
        # Only the path is the client's free text; the method is an HTTP token, the address an
        # IP and the identity hex, none of which can need JSON escaping.
        text = path
        if not text.isascii() or not text.isprintable() or '"' in text or "\\" in text:
            text = json.dumps(text)[1:-1]
        part = (
            f'"request":{{"path":"{text}","method":"{method}"'
            f"{_optional('ip', ip)}{_optional('identity', identity)}}},"
            '"response":{"code":'
        ).encode()
        if len(self._requests) >= _REQUEST_PARTS:  # bounded: names are the clients' choice
            self._requests.clear()
        self._requests[path, method, ip, identity] = part
        return part

    def write(self, line: bytes) -> None:
        """Queue ``line``; everything queued in this loop iteration is written at its end."""
        if self._out is None:
            return
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop (tests, shutdown): write at once
                self._pending.append(line)
                self.flush()
                return
        self._pending.append(line)

    def flush(self) -> None:
        if self._out is None or not self._pending:
            self._pending.clear()
            return
        data, self._pending = b"".join(self._pending), []
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError) as exc:  # a full disk must not fail requests
            logging.getLogger("aiokes.error").error("audit log: cannot write: %s", exc)

    def close(self) -> None:
        self.flush()
        if self._owned and self._out is not None:
            self._out.close()
        self._out, self._owned = None, False
        self.enabled = False


def _optional(name: str, value: str) -> str:
    # KES omits an empty ip or identity (Go's omitempty).
    return f',"{name}":"{value}"' if value else ""
