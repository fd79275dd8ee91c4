"""What a handler receives: the request, the state snapshot it runs on, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field

# Every annotation's type is imported at run time, none under TYPE_CHECKING: mypyc (the
# compiled build, hatch_build.py) looks a compiled dataclass's field types up in the module.
from aiokes.api.routes import Route
from aiokes.api.state import ServerState
from aiokes.audit import AuditLog
from aiokes.cache.source import KeySource
from aiokes.http import Request
from aiokes.log import LogStream
from aiokes.metrics import Metrics

__all__ = ["Call", "Services"]


@dataclass(slots=True)
class Services:
    """What lives as long as the process, across reloads: metrics, the audit log, the log
    streams, and in a worker of several the link to the key keeper (``keys``)."""

    metrics: Metrics = field(default_factory=Metrics)
    audit: AuditLog = field(default_factory=AuditLog)
    audit_stream: LogStream = field(default_factory=LogStream)
    error_stream: LogStream = field(default_factory=LogStream)
    keys: KeySource | None = None


@dataclass(slots=True)
class Call:
    request: Request
    state: ServerState
    services: Services
    route: Route
    identity: str  # "" when the route needs none and the client sent no certificate
    resource: str  # the part of the path after a subtree route's prefix
    body: bytes
