"""A fake Azure Key Vault (secrets data plane) plus token endpoint, over HTTPS on 127.0.0.1.

It implements just enough of the REST API for the real Azure SDK (the challenge flow,
set, get latest/version, versions and secrets listings with ``nextLink`` paging, delete,
get/purge deleted, the soft-delete 409s) with the response and error shapes that Key Vault
sends (see ``shared/docs/azure-keyvault.md`` §1). What an emulator cannot do is switchable
through :class:`Faults`: throttling with and without ``Retry-After``, 5xx, slow answers,
token endpoint failures, asynchronous deletion and a competing writer (:meth:`compete`).

Every request is counted per ``(method, route)``; tests assert on those counts.

    async with FakeVault.running(tmp_path) as vault:
        store = AzureKeyVaultKeystore(vault.url, **vault.credentials(), ca_file=vault.ca_file)
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme
from aiohttp import web

TENANT_ID = "72f988bf-0000-4000-8000-00000000fa4e"
CLIENT_ID = "5a1e0000-0000-4000-8000-00000000c1d0"
CLIENT_SECRET = "fake-client-secret"
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_TOKEN_ROUTE = "/{tenant}/oauth2/v2.0/token"
_MAX_PAGE = 25


@dataclass
class Faults:
    """Switches for what the fake vault does wrong. Counters decrease as they fire."""

    throttle_next: int = 0  # answer this many vault requests with 429
    retry_after: str | None = None  # the 429's Retry-After header, None for none
    fail_next: int = 0  # answer this many vault requests with fail_status
    fail_status: int = 503
    delay: float = 0.0  # seconds before every vault answer (the status probe included)
    token_failures: int = 0  # answer this many token requests with token_status
    token_status: int = 401
    purge_forbidden: bool = False  # purge answers 403 ForbiddenByPolicy
    deletion_lag: int = 0  # deleted-secret requests that 404 (PUTs 409) after a delete
    missing_versions_status: int = 404  # versions listing of an unknown secret: 404 or 200
    lowkey_errors: bool = False  # error codes as lowkey-vault sends them (Java class names)
    lose_put_responses: int = 0  # store the PUT's version, then answer 503 (a lost response)
    stall_writes: bool = False  # PUTs never get an answer (until the fake stops)


@dataclass
class _Version:
    id: str
    value: str
    created: int
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None


@dataclass
class _Secret:
    name: str
    versions: list[_Version] = field(default_factory=list)
    deleted_at: int | None = None
    lag: int = 0  # deleted-secret requests left before the deletion is visible


@dataclass
class _Competitor:
    value: str
    created_delta: int
    version: str | None


class FakeVault:
    """The fake; build it with :meth:`running`."""

    def __init__(self, ca_file: Path, *, page_size: int, clock: Callable[[], int]) -> None:
        self.ca_file = str(ca_file)
        self.faults = Faults()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.api_versions: set[str] = set()
        self.tokens_issued = 0
        self.connections: set[tuple[str, int]] = set()  # client (host, port) of every request
        self.url = ""
        self._page_size = page_size
        self._clock = clock
        self._secrets: dict[str, _Secret] = {}
        self._tokens: set[str] = set()
        self._competitors: dict[str, _Competitor] = {}
        self._stopping = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def running(
        cls, directory: Path, *, page_size: int = 25, clock: Callable[[], int] | None = None
    ) -> AsyncIterator[FakeVault]:
        """Serve a fresh fake on a free port; its CA certificate goes into ``directory``."""
        ca = trustme.CA()
        ca_file = directory / "fake-vault-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        vault = cls(ca_file, page_size=page_size, clock=clock or (lambda: int(time.time())))
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(ssl_context)
        runner = web.AppRunner(vault._app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        vault.url = f"https://{host}:{port}"
        try:
            yield vault
        finally:
            vault._stopping.set()  # releases delayed handlers at once
            await runner.cleanup()

    def credentials(self) -> dict[str, Any]:
        """Keystore arguments that authenticate against this fake's token endpoint."""
        return {
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority_host": self.url,
        }

    def count(self, method: str, route: str) -> int:
        return self.requests[(method, route)]

    # -- direct access to the state, "behind the keystore's back" ---------------------------

    def set_version(
        self,
        name: str,
        value: str,
        *,
        created: int | None = None,
        version: str | None = None,
        enabled: bool = True,
        expires: int | None = None,
    ) -> str:
        """Add a version as another writer would; returns its id."""
        secret = self._secrets.setdefault(name.lower(), _Secret(name))
        entry = _Version(
            id=version or secrets.token_hex(16),
            value=value,
            created=self._clock() if created is None else created,
            enabled=enabled,
            expires=expires,
        )
        secret.versions.append(entry)
        return entry.id

    def values(self, name: str) -> list[str]:
        """The values of all live versions, oldest first."""
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is not None:
            return []
        return [v.value for v in sorted(secret.versions, key=lambda v: (v.created, v.id))]

    def soft_delete(self, name: str, *, lag: int = 0) -> None:
        """Delete as another client would; ``lag`` as :attr:`Faults.deletion_lag`."""
        secret = self._secrets[name.lower()]
        secret.deleted_at, secret.lag = self._clock(), lag

    def age_deletion(self, name: str, seconds: int) -> None:
        """Move a soft-deleted secret's deletion date ``seconds`` into the past."""
        secret = self._secrets[name.lower()]
        assert secret.deleted_at is not None, f"{name} is not soft-deleted"
        secret.deleted_at -= seconds

    def wipe(self) -> None:
        """Lose every secret, deleted ones too: a vault deleted and re-created empty."""
        self._secrets.clear()

    def is_soft_deleted(self, name: str) -> bool:
        secret = self._secrets.get(name.lower())
        return secret is not None and secret.deleted_at is not None

    def compete(
        self, name: str, value: str, *, created_delta: int = -1, version: str | None = None
    ) -> None:
        """Make another writer's PUT of ``name`` land just before the next PUT of it.

        The competitor's version is created ``created_delta`` seconds from the clock (so
        -1 makes it strictly older) with the given version id (default random).
        """
        self._competitors[name.lower()] = _Competitor(value, created_delta, version)

    # -- the application ---------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count, self._inject_faults, self._authenticate])
        app.router.add_post(_TOKEN_ROUTE, self._token)
        app.router.add_get("/secrets", self._list_secrets)
        app.router.add_put("/secrets/{name}", self._set)
        app.router.add_get("/secrets/{name}/versions", self._list_versions)
        app.router.add_get("/secrets/{name}", self._get)
        app.router.add_get("/secrets/{name}/", self._get)
        app.router.add_get("/secrets/{name}/{version}", self._get)
        app.router.add_delete("/secrets/{name}", self._delete)
        app.router.add_get("/deletedsecrets", self._list_deleted)
        app.router.add_get("/deletedsecrets/{name}", self._get_deleted)
        app.router.add_delete("/deletedsecrets/{name}", self._purge)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        self.requests[(request.method, route.canonical if route else "unmatched")] += 1
        if request.transport is not None:
            self.connections.add(request.transport.get_extra_info("peername")[:2])
        return await handler(request)

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if _is_token_request(request):
            return await handler(request)
        if self.faults.stall_writes and request.method == "PUT":
            await self._stopping.wait()
        if self.faults.delay:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.delay)
        if self.faults.throttle_next > 0:
            self.faults.throttle_next -= 1
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
            return _error(
                429,
                "Throttled",
                "Request was not processed because too many "
                "requests were received. Reason: VaultRequestTypeLimitReached",
                headers=headers,
            )
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return _error(self.faults.fail_status, "InternalServerError", "injected failure")
        return await handler(request)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if _is_token_request(request):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._tokens:
            challenge = (
                f'Bearer authorization="{self.url}/{TENANT_ID}", resource="https://vault.azure.net"'
            )
            return _error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                headers={"WWW-Authenticate": challenge},
            )
        api_version = request.query.get("api-version")
        if not api_version:
            return _error(400, "BadParameter", "api-version is required")
        self.api_versions.add(api_version)
        name = request.match_info.get("name")
        if name is not None and not _NAME.fullmatch(name):
            return _error(400, "BadParameter", f"Invalid name '{name}'")
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.faults.token_failures > 0:
            self.faults.token_failures -= 1
            return _token_error(self.faults.token_status)
        known = (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)
        if request.match_info["tenant"] != TENANT_ID or not known:
            return _token_error(401)
        token = f"fake-token-{secrets.token_hex(8)}"
        self._tokens.add(token)
        self.tokens_issued += 1
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": 3600,
                "ext_expires_in": 3600,
                "access_token": token,
            }
        )

    async def _set(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.json()
        if not isinstance(body, dict) or not body.get("value"):
            return _error(400, "BadParameter", "value is required")
        secret = self._secrets.get(name.lower())
        if secret is not None and secret.deleted_at is not None:
            return self._deleted_conflict(name, secret)
        competitor = self._competitors.pop(name.lower(), None)
        if competitor is not None:
            self.set_version(
                name,
                competitor.value,
                version=competitor.version,
                created=self._clock() + competitor.created_delta,
            )
        attributes = body.get("attributes") or {}
        version = self.set_version(name, body["value"], enabled=attributes.get("enabled", True))
        if self.faults.lose_put_responses > 0:
            self.faults.lose_put_responses -= 1
            return _error(503, "ServiceUnavailable", "the version was stored; the answer is lost")
        return web.json_response(self._bundle(name, self._find(name, version), with_value=True))

    async def _get(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info.get("version", "")
        secret = self._live(name)
        entry = None if secret is None else self._pick(secret, version)
        if secret is None or entry is None:
            return self._not_found(name)
        if not entry.enabled:
            return _error(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                inner="SecretDisabled",
            )
        return web.json_response(self._bundle(secret.name, entry, with_value=True))

    async def _list_versions(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        secret = self._live(name)
        if secret is None and self.faults.missing_versions_status == 404:
            return self._not_found(name)
        entries = sorted(secret.versions, key=lambda v: v.id) if secret else []
        items = [self._bundle(secret.name, e, with_value=False) for e in entries] if secret else []
        return web.json_response(self._page(request, items))

    async def _list_secrets(self, request: web.Request) -> web.Response:
        live = sorted(
            (s for s in self._secrets.values() if s.deleted_at is None and s.versions),
            key=lambda s: s.name.lower(),
        )
        items = [
            {
                "id": f"{self.url}/secrets/{s.name}",
                "attributes": _attributes(max(s.versions, key=lambda v: v.created)),
            }
            for s in live
        ]
        return web.json_response(self._page(request, items))

    async def _delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        secret = self._live(name)
        if secret is None:
            return self._not_found(name)
        secret.deleted_at, secret.lag = self._clock(), self.faults.deletion_lag
        return web.json_response(self._deleted_bundle(secret))

    async def _get_deleted(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        secret = self._visible_deleted(name)
        if secret is None:
            return _error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return web.json_response(self._deleted_bundle(secret))

    async def _list_deleted(self, request: web.Request) -> web.Response:
        deleted = sorted(
            (s for s in self._secrets.values() if s.deleted_at is not None),
            key=lambda s: s.name.lower(),
        )
        return web.json_response(self._page(request, [self._deleted_bundle(s) for s in deleted]))

    async def _purge(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.faults.purge_forbidden:
            return _error(
                403,
                "Forbidden",
                "The user, group or application does not have "
                "secrets purge permission on key vault 'fake'.",
                inner="ForbiddenByPolicy",
            )
        if self._visible_deleted(name) is None:
            return _error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        del self._secrets[name.lower()]
        return web.Response(status=204)

    # -- helpers -------------------------------------------------------------------------------

    def _live(self, name: str) -> _Secret | None:
        secret = self._secrets.get(name.lower())
        return secret if secret is not None and secret.deleted_at is None else None

    def _visible_deleted(self, name: str) -> _Secret | None:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is None:
            return None
        if secret.lag > 0:  # Key Vault moves a secret into the deleted collection lazily
            secret.lag -= 1
            return None
        return secret

    def _find(self, name: str, version: str) -> _Version:
        return next(v for v in self._secrets[name.lower()].versions if v.id == version)

    @staticmethod
    def _pick(secret: _Secret, version: str) -> _Version | None:
        if not version:  # "latest": the most recently created version
            return max(secret.versions, key=lambda v: v.created, default=None)
        return next((v for v in secret.versions if v.id == version), None)

    def _bundle(self, name: str, entry: _Version, *, with_value: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "id": f"{self.url}/secrets/{name}/{entry.id}",
            "attributes": _attributes(entry),
        }
        if with_value:
            bundle["value"] = entry.value
        return bundle

    def _deleted_bundle(self, secret: _Secret) -> dict[str, Any]:
        """A DeletedSecretBundle: the latest version's attributes, no value."""
        latest = max(secret.versions, key=lambda v: v.created)
        bundle = self._bundle(secret.name, latest, with_value=False)
        deleted_at = secret.deleted_at or 0
        bundle.update(
            recoveryId=f"{self.url}/deletedsecrets/{secret.name}",
            deletedDate=deleted_at,
            scheduledPurgeDate=deleted_at + 7 * 86400,
        )
        return bundle

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        size = min(int(request.query.get("maxresults", self._page_size)), _MAX_PAGE)
        start = int(request.query.get("$skiptoken", "0"))
        end = start + size
        next_link = None
        if end < len(items):
            next_link = (
                f"{self.url}{request.path}?api-version={request.query['api-version']}"
                f"&$skiptoken={end}&maxresults={size}"
            )
        return {"value": items[start:end], "nextLink": next_link}

    def _deleted_conflict(self, name: str, secret: _Secret) -> web.Response:
        if self.faults.lowkey_errors:
            return _error(409, "AlreadyExistsException", f"Secret {name} is deleted.")
        if secret.lag > 0:
            secret.lag -= 1
            return _error(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted.",
                inner="ObjectIsBeingDeleted",
            )
        return _error(
            409,
            "Conflict",
            f"Secret {name} is currently in a deleted but recoverable "
            "state, and its name cannot be reused; in this state, the secret can only "
            "be recovered or purged.",
            inner="ObjectIsDeletedButRecoverable",
        )

    def _not_found(self, name: str) -> web.Response:
        code = "NotFoundException" if self.faults.lowkey_errors else "SecretNotFound"
        return _error(404, code, f"A secret with (name/id) {name} was not found in this key vault.")


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _attributes(entry: _Version) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "enabled": entry.enabled,
        "created": entry.created,
        "updated": entry.created,
        "recoveryLevel": "CustomizedRecoverable+Purgeable",
        "recoverableDays": 7,
    }
    if entry.expires is not None:
        attributes["exp"] = entry.expires
    if entry.not_before is not None:
        attributes["nbf"] = entry.not_before
    return attributes


def _is_token_request(request: web.Request) -> bool:
    route = request.match_info.route.resource
    return route is not None and route.canonical == _TOKEN_ROUTE


def _error(
    status: int,
    code: str,
    message: str,
    *,
    inner: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers)


def _token_error(status: int) -> web.Response:
    return web.json_response(
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215],
        },
        status=status,
    )


# -- a vault connection the tests can cut or hold -------------------------------------------


class VaultLink:
    """A TCP pass-through in front of the fake vault (TLS passes through untouched).

    :meth:`cut` makes a real outage: the port refuses connections (ECONNREFUSED) and the
    connections aiokes holds are reset. :meth:`restore` listens on the same port again.
    :meth:`break_connections` is an outage that can be counted: every connection is
    accepted (and counted), then reset, as behind a load balancer without a healthy backend.
    :meth:`hold` keeps what aiokes sends from reaching the vault until :meth:`release`, so a
    vault read stays in flight for as long as a test needs.
    """

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or "", upstream.port or 443)
        self.port = 0
        self.connections = 0  # accepted since start
        self.resetting = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = asyncio.Event()
        self._open.set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def vault(self) -> str:
        """The vault's name in aiokes's error messages."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    restore = start

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._reset_all()  # before waiting: on 3.12+ wait_closed waits for the connections
        if server is not None:
            await server.wait_closed()

    def break_connections(self) -> None:
        self.resetting = True
        self._reset_all()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.resetting:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        ends = {writer, upstream_writer}
        self._writers |= ends
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, gated=True)),
            asyncio.create_task(self._pump(upstream_reader, writer, gated=False)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for end in ends:
                end.transport.abort()
            self._writers -= ends

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if gated:
                    await self._open.wait()
                writer.write(data)
                await writer.drain()
        except OSError:  # reset by either side: the connection is over
            return
