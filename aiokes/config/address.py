"""The listen address (``address:`` in the config file, ``--addr`` on the command line).

Parsed once, here, into a :class:`ListenAddress` the server binds as it is: the config file
and ``--addr`` cannot disagree with the listener about what a valid address is.

The form is Go's ``host:port`` as KES takes it: ``:7373``, ``0.0.0.0:7373``, ``[::1]:7373``,
``localhost:7373``. The port must be a number: Go would also look up a service name such as
``:https``, but that depends on the machine's ``/etc/services`` (often missing in
containers), so it is refused when the file loads rather than working on one host only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_ADDRESS", "ListenAddress", "parse_listen_address"]

# The host is empty, a name or IPv4 address (no colon), or an IPv6 address in brackets.
_ADDRESS = re.compile(r"(\[[^\]]*\]|[^:\[\]]*):([^:]*)")
_ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - KES listens on every interface by default
_MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the server listens; ``port`` 0 picks a free port (tests)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


DEFAULT_ADDRESS = ListenAddress(_ALL_INTERFACES, 7373)


def parse_listen_address(text: str) -> ListenAddress:
    """``host:port`` → :class:`ListenAddress`; a :class:`ValueError` says what is wrong."""
    match = _ADDRESS.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid address '{text}': expected host:port or :port")
    host, port = match.groups()
    if not port.isascii() or not port.isdigit() or int(port) > _MAX_PORT:
        raise ValueError(f"invalid address '{text}': the port must be a number from 0 to 65535")
    return ListenAddress(host.strip("[]") or _ALL_INTERFACES, int(port))
