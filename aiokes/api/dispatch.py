"""The one request handler: route, check the method, authenticate, read the body, call the
handler under its timeout, and map every failure to KES's status and message.

aiohttp's low-level server calls :class:`Dispatcher` directly — no router, no middleware
chain — because this runs thousands of times a second and every layer costs.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from aiokes.api.call import Call, Services
from aiokes.api.routes import Auth, Route
from aiokes.api.wire import error_response
from aiokes.errors import APIError, BadRequest
from aiokes.log import error_logger
from aiokes.state import ServerState
from aiokes.tls import peer_identity

__all__ = ["Dispatcher"]

# Go's http.NotFound, byte for byte.
_NOT_FOUND = b"404 page not found\n"
_NOT_FOUND_HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
}


class Dispatcher:
    """Serves requests on the current :class:`ServerState`; a reload assigns ``state``."""

    def __init__(self, state: ServerState, services: Services) -> None:
        self.state = state
        self.services = services

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        state = self.state  # one snapshot for the whole request, even across a reload
        found = state.routes.find(request.path)
        if found is None:
            self._audit(request, "", 404, started)
            return web.Response(status=404, body=_NOT_FOUND, headers=_NOT_FOUND_HEADERS)
        route, resource = found
        state.activity.enter()
        try:
            identity, response = await self._serve(request, state, route, resource)
        finally:
            state.activity.exit()
        self._audit(request, identity, response.status, started)
        return response

    async def _serve(
        self, request: web.BaseRequest, state: ServerState, route: Route, resource: str
    ) -> tuple[str, web.StreamResponse]:
        identity = ""
        metrics = self.services.metrics
        try:
            if not route.accepts(request.method):
                raise APIError(
                    f"received method '{request.method}' expected '{route.method}'", status=405
                )
            peer = _peer_identity(request)
            identity = peer or ""  # known even when refused: the audit log says who it was
            _authorize(route, state, peer, request.path)
        except APIError as exc:
            return identity, error_response(exc)
        metered = route.metered
        if metered:
            metrics.request_started()
        started = time.perf_counter()
        try:
            response = await self._handle(request, state, route, identity, resource)
        finally:
            if metered:
                metrics.request_finished()
        if metered:
            metrics.observe(response.status, time.perf_counter() - started)
        return identity, response

    async def _handle(
        self,
        request: web.BaseRequest,
        state: ServerState,
        route: Route,
        identity: str,
        resource: str,
    ) -> web.StreamResponse:
        try:
            body = await _read_body(request, route)
            call = Call(request, state, self.services, route, identity, resource, body)
            return await route.handler(call)
        except APIError as exc:
            return error_response(exc)
        except TimeoutError:
            error_logger.error(
                "%s %s: timed out after %gs", request.method, request.path, route.timeout
            )
            return error_response(APIError("request timed out", status=503))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            error_logger.exception("%s %s: internal error", request.method, request.path)
            return error_response(APIError("internal server error", status=500))

    def _audit(self, request: web.BaseRequest, identity: str, status: int, started: float) -> None:
        audit, stream = self.services.audit, self.services.audit_stream
        if not (audit.enabled or stream.active):
            return
        duration = time.perf_counter() - started
        line = audit.line(
            request.remote or "", request.method, request.path, identity, status, duration
        )
        self.services.metrics.audit_event()
        audit.write(line)
        if stream.active:
            stream.publish(line)


def _peer_identity(request: web.BaseRequest) -> str | None:
    transport = request.transport
    return peer_identity(transport.get_extra_info("ssl_object") if transport else None)


def _authorize(route: Route, state: ServerState, identity: str | None, path: str) -> None:
    if route.auth is not Auth.POLICY:
        return
    if identity is None:
        raise APIError("tls: client certificate is required", status=400)
    state.authorizer.verify(identity, path)


async def _read_body(request: web.BaseRequest, route: Route) -> bytes:
    """Read at most the route's limit; a larger body is a malformed one, as in KES (whose
    capped reader makes the JSON decoder fail)."""
    limit = route.max_body
    if limit == 0 or not request.body_exists:
        return b""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise BadRequest(route.body_error)
        # A small body has usually arrived with the headers: take it without awaiting.
        data = request.content.read_nowait(length)
        if len(data) < length:
            try:
                data += await request.content.readexactly(length - len(data))
            except asyncio.IncompleteReadError:  # the client sent less than it announced
                raise BadRequest(route.body_error) from None
        return data
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise BadRequest(route.body_error)
        chunks.append(chunk)
    return b"".join(chunks)
