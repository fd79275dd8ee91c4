"""The route table, as data: KES HEAD's routes (spec §2) plus bulk decrypt for older MinIO."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aiokes.http import Response

if TYPE_CHECKING:
    from aiokes.api.call import Call
    from aiokes.api.state import ServerState

__all__ = ["Auth", "Handler", "ImmediateHandler", "Route", "RouteTable"]

Handler = Callable[["Call"], Awaitable[Response]]
# A route's answer without waiting, when it has one at hand (a cached key, a small body);
# ``None`` when the request needs its asynchronous handler, having done nothing. Called with
# the state, the resource (always a valid key name: only key routes have one) and the body.
ImmediateHandler = Callable[["ServerState", str, bytes], Response | None]
MAX_BODY = 1_000_000  # KES HEAD: 1 * mem.MB, decimal
LEGACY_MAX_BODY = 1 << 20  # bulk decrypt comes from the LEGACY API, which allowed 1 MiB


class Auth(enum.Enum):
    NONE = "none"  # /version: no certificate needed
    IDENTIFY = "identify"  # any certificate (or none): self-describe, skip_auth routes
    POLICY = "policy"  # the admin, or an identity whose policy allows the path


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # ends in "/" for subtree routes, whose remainder is the resource
    handler: Handler
    max_body: int = 0
    timeout: float = 15.0  # 0 = none (log streams)
    auth: Auth = Auth.POLICY
    metered: bool = True  # counted in the kes_http_* metrics
    body_error: str = "invalid request body"  # the 400 for a malformed or oversized body
    immediate: ImmediateHandler | None = None  # tried first: the hot routes' cache hits

    @property
    def subtree(self) -> bool:
        return self.path.endswith("/")

    def canonical_path(self, resource: str) -> str:
        """The path as KES's mux hands it to the policy check, whatever alias was asked for.

        Go's ServeMux redirects a subtree root asked without its slash (``/v1/key/list``,
        which kms-go sends for an empty prefix) to the root with it, so KES's policies only
        ever see ``/v1/key/list/``; aiokes serves the alias directly and must check the same
        path, or ``/v1/key/list/*`` would not allow it (issue 11).
        """
        return self.path + resource if self.subtree else self.path

    def accepts(self, method: str) -> bool:
        # Every KES client before 2024 sends POST to the PUT routes; HEAD accepts both.
        return method == self.method or (self.method == "PUT" and method == "POST")


class RouteTable:
    """Finds the route of a URL path as Go's ServeMux does for KES's patterns."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._exact = {route.path: route for route in self.routes if not route.subtree}
        self._subtree = {route.path: route for route in self.routes if route.subtree}
        # Longest prefix first, so /v1/key/bulk/decrypt/ wins over any shorter prefix.
        self._prefixes = sorted(self._subtree, key=len, reverse=True)

    def find(self, path: str) -> tuple[Route, str] | None:
        """The route for ``path`` and the resource (what follows a subtree prefix)."""
        route = self._exact.get(path)
        if route is not None:
            return route, ""
        head, _, tail = path.rpartition("/")
        route = self._subtree.get(head + "/")
        if route is not None:
            return route, tail
        for prefix in self._prefixes:
            if path.startswith(prefix):
                return self._subtree[prefix], path[len(prefix) :]
        # Go's mux redirects a subtree root without its slash (/v1/key/list) to the root with
        # it; kms-go sends exactly that for an empty prefix. Serving it directly saves a trip.
        route = self._subtree.get(path + "/")
        if route is not None:
            return route, ""
        return None

    def configured(self, overrides: Mapping[str, tuple[bool, float | None]]) -> RouteTable:
        """A table with ``api:`` settings applied: path -> (skip_auth, timeout or None)."""
        routes = []
        for route in self.routes:
            skip_auth, timeout = overrides.get(route.path, (False, None))
            if skip_auth and route.auth is Auth.POLICY:
                route = replace(route, auth=Auth.IDENTIFY)
            if timeout:
                route = replace(route, timeout=timeout)
            routes.append(route)
        return RouteTable(routes)
