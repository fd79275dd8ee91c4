"""The one request handler: route, check the method, authenticate, read the body, call the
handler under its timeout, and map every failure to KES's status and message.

The HTTP layer (:mod:`aiokes.http`) calls :class:`Dispatcher` directly — no router, no
middleware chain — because this runs thousands of times a second and every layer costs.
A request whose route can answer it at once (a cached key: MinIO's every generate and
decrypt) is served by :meth:`Dispatcher.answer_now` from the connection's read callback,
without a task, a coroutine or a timeout; everything else by the coroutine, which applies the
route's timeout around the handler as KES does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokes.api.call import Call, Services
from aiokes.api.routes import Auth, ImmediateHandler, Route
from aiokes.api.state import ServerState
from aiokes.api.wire import error_response
from aiokes.errors import APIError, BadRequest
from aiokes.http import BadBody, Request, Response, header_block
from aiokes.identity import valid_name
from aiokes.log import error_logger
from aiokes.tls import peer_identity

__all__ = ["Dispatcher"]

# Go's http.NotFound, byte for byte.
_NOT_FOUND = b"404 page not found\n"
_NOT_FOUND_HEADERS = header_block(
    {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
)
# Lanes one connection keeps (MinIO asks for a handful of keys; a client asking for
# thousands just works them out again).
_LANES_PER_CONNECTION = 64


class Dispatcher:
    """Serves requests on the current :class:`ServerState`; a reload assigns ``state``.

    This runs once per request, thousands of times a second, so it is kept flat: every layer
    of coroutine and every attribute chain is paid per request (bench/RESULTS.md, section 12).
    """

    def __init__(self, state: ServerState, services: Services) -> None:
        self.state = state
        self.services = services
        self._metrics = services.metrics
        self._audit_log = services.audit
        self._audit_stream = services.audit_stream

    def answer_now(self, request: Request) -> Response | None:
        """The answer to ``request`` if it needs no waiting, audited and metered exactly as
        :meth:`__call__` would; ``None`` otherwise, having done nothing (then call that)."""
        started = time.perf_counter()
        lane = request.memo.get(request.path)
        if lane is None or lane.state is not self.state or lane.method != request.method:
            lane = self._open_lane(request)
        immediate = lane.immediate
        if immediate is None or not request.complete:
            return None
        try:
            body = request.body_at_hand(lane.max_body)
        except BadBody:
            return None  # the full path answers it (one place for the body's errors)
        if body is None:
            return None
        try:
            response = immediate(lane.state, lane.resource, body)
        except APIError as exc:
            response = error_response(exc)
        except Exception:
            error_logger.exception("%s %s: internal error", request.method, request.path)
            response = error_response(APIError("internal server error", status=500))
        if response is None:
            return None
        duration = time.perf_counter() - started
        self._metrics.observe(response.status, duration)
        audit, stream = self._audit_log, self._audit_stream
        if audit.enabled or stream.active:
            self._audit_line(audit.finish_line(lane.audit_part, response.status, duration))
        return response

    def _open_lane(self, request: Request) -> _Lane:
        """Work out, once per connection, method and path, what :meth:`answer_now` needs."""
        memo = request.memo
        if len(memo) >= _LANES_PER_CONNECTION:
            memo.clear()  # bounded: the paths are the client's choice
        state, path, method = self.state, request.path, request.method
        identity = peer_identity(request.ssl_object)
        lane = _Lane(state, method, "", 0, None, b"")
        found = state.routes.find(path)
        if found is not None:
            route, resource = found
            immediate = route.immediate
            if immediate is not None and route.metered and valid_name(resource):
                try:
                    _admit(method, route, state, identity, route.canonical_path(resource))
                except APIError:
                    immediate = None  # refused: the full path answers, with its error
                part = self._audit_log.request_part(path, method, request.remote, identity or "")
                lane = _Lane(state, method, resource, route.max_body, immediate, part)
        memo[path] = lane
        return lane

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        state = self.state  # one snapshot for the whole request, even across a reload
        path = request.path
        found = state.routes.find(path)
        if found is None:
            self._audit(request, path, "", 404, started)
            return Response(_NOT_FOUND, 404, _NOT_FOUND_HEADERS)
        route, resource = found
        peer = peer_identity(request.ssl_object)
        identity = peer or ""  # known even when refused: the audit log says who it was
        activity = state.activity
        activity.enter()
        try:
            _admit(request.method, route, state, peer, route.canonical_path(resource))
        except APIError as exc:
            response = error_response(exc)
        else:
            response = await self._handle(request, state, route, identity, resource, started)
        finally:
            activity.exit()
        self._audit(request, path, identity, response.status, started)
        return response

    async def _handle(
        self,
        request: Request,
        state: ServerState,
        route: Route,
        identity: str,
        resource: str,
        started: float,
    ) -> Response:
        metrics = self._metrics
        metered = route.metered
        if metered:
            metrics.request_started()
        try:
            limit = route.max_body
            body = request.body_at_hand(limit) if limit else b""  # usually came with the head
            if body is None:
                body = await request.read_body(limit, route.timeout or None)
            call = Call(request, state, self.services, route, identity, resource, body)
            async with asyncio.timeout(route.timeout or None):  # KES: around every handler
                response = await route.handler(call)
        except APIError as exc:
            response = error_response(exc)
        except BadBody:
            # Larger than the route takes, broken or stalled: a malformed body, as in KES
            # (whose capped reader makes the JSON decoder fail).
            response = error_response(BadRequest(route.body_error))
        except TimeoutError:
            error_logger.error(
                "%s %s: timed out after %gs", request.method, request.path, route.timeout
            )
            response = error_response(APIError("request timed out", status=503))
        except ConnectionResetError:  # the client went away: nobody to answer
            if metered:
                metrics.request_abandoned()
            raise
        except Exception:
            error_logger.exception("%s %s: internal error", request.method, request.path)
            response = error_response(APIError("internal server error", status=500))
        except BaseException:  # cancelled (client gone, shutdown) or the process is exiting
            if metered:
                metrics.request_abandoned()
            raise
        if metered:
            metrics.request_finished(response.status, time.perf_counter() - started)
        return response

    def _audit(
        self, request: Request, path: str, identity: str, status: int, started: float
    ) -> None:
        audit, stream = self._audit_log, self._audit_stream
        if not (audit.enabled or stream.active):
            return
        duration = time.perf_counter() - started
        self._audit_line(
            audit.line(request.remote, request.method, path, identity, status, duration)
        )

    def _audit_line(self, line: bytes) -> None:
        self._metrics.audit_event()
        self._audit_log.write(line)
        stream = self._audit_stream
        if stream.active:
            stream.publish(line)


@dataclass(frozen=True, slots=True)
class _Lane:
    """What one connection's requests for one method and path need on the immediate path,
    worked out on the first and kept for the rest (a connection's client and the state's
    routes and policies do not change under it; a reload makes a new state, so new lanes).
    ``immediate`` is ``None`` when the full path must answer: no such route, no immediate
    handler, an invalid key name, or a refusal, whose error the full path writes."""

    state: ServerState
    method: str
    resource: str  # a valid key name when there is an immediate handler
    max_body: int
    immediate: ImmediateHandler | None
    audit_part: bytes  # the request's part of the audit line (aiokes.audit)


def _admit(method: str, route: Route, state: ServerState, identity: str | None, path: str) -> None:
    """Raise the :class:`APIError` that refuses the request, if any: a wrong method first,
    then a missing certificate or a policy that does not allow ``path``."""
    if not route.accepts(method):
        raise APIError(f"received method '{method}' expected '{route.method}'", status=405)
    if route.auth is not Auth.POLICY:
        return
    if identity is None:
        raise APIError("tls: client certificate is required", status=400)
    state.authorizer.verify(identity, path)
