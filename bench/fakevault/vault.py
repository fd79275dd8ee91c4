"""A fake Azure Key Vault (secrets data plane) plus token endpoint, over HTTPS on 127.0.0.1.

It implements just enough of the REST API for the real Azure SDK (the challenge flow,
set, get latest/version, versions and secrets listings with ``nextLink`` paging, delete,
get/purge deleted, the soft-delete 409s) with the response and error shapes that Key Vault
sends (see ``shared/docs/azure-keyvault.md`` §1). What an emulator cannot do is switchable
through :class:`Faults`: throttling with and without ``Retry-After``, 5xx, slow answers,
token endpoint failures, asynchronous deletion and a competing writer (:meth:`compete`).

Every request is counted per ``(method, route)``; tests assert on those counts.

    async with FakeVault.running(tmp_path) as vault:
        store = azure_keystore(vault.url, **vault.credentials(), ca_file=vault.ca_file)
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from bench.fakevault.responses import error_response, token_error_response, version_attributes
from bench.fakevault.store import Faults, Secret, SecretStore, Version

TENANT_ID = "72f988bf-0000-4000-8000-00000000fa4e"
CLIENT_ID = "5a1e0000-0000-4000-8000-00000000c1d0"
CLIENT_SECRET = "fake-client-secret"
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_TOKEN_ROUTE = "/{tenant}/oauth2/v2.0/token"
_MAX_PAGE = 25


class FakeVault(SecretStore):
    """The fake; build it with :meth:`running`. What it holds, and the changes a test makes
    behind the keystore's back, are :class:`SecretStore`'s."""

    def __init__(self, ca_file: Path, *, page_size: int, clock: Callable[[], int]) -> None:
        super().__init__(clock)
        self.ca_file = str(ca_file)
        self.faults = Faults()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.api_versions: set[str] = set()
        self.tokens_issued = 0
        self.connections: set[tuple[str, int]] = set()  # client (host, port) of every request
        self.url = ""
        self._page_size = page_size
        self._tokens: set[str] = set()
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
            return error_response(
                429,
                "Throttled",
                "Request was not processed because too many "
                "requests were received. Reason: VaultRequestTypeLimitReached",
                headers=headers,
            )
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return error_response(
                self.faults.fail_status, "InternalServerError", "injected failure"
            )
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
            return error_response(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                headers={"WWW-Authenticate": challenge},
            )
        api_version = request.query.get("api-version")
        if not api_version:
            return error_response(400, "BadParameter", "api-version is required")
        self.api_versions.add(api_version)
        name = request.match_info.get("name")
        if name is not None and not _NAME.fullmatch(name):
            return error_response(400, "BadParameter", f"Invalid name '{name}'")
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.faults.token_failures > 0:
            self.faults.token_failures -= 1
            return token_error_response(self.faults.token_status)
        known = (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)
        if request.match_info["tenant"] != TENANT_ID or not known:
            return token_error_response(401)
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
            return error_response(400, "BadParameter", "value is required")
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
            return error_response(
                503, "ServiceUnavailable", "the version was stored; the answer is lost"
            )
        return web.json_response(self._bundle(name, self._find(name, version), with_value=True))

    async def _get(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info.get("version", "")
        secret = self._live(name)
        entry = None if secret is None else self._pick(secret, version)
        if secret is None or entry is None:
            return self._not_found(name)
        if not entry.enabled:
            return error_response(
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
                "attributes": version_attributes(max(s.versions, key=lambda v: v.created)),
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
            return error_response(404, "SecretNotFound", f"Deleted Secret not found: {name}")
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
            return error_response(
                403,
                "Forbidden",
                "The user, group or application does not have "
                "secrets purge permission on key vault 'fake'.",
                inner="ForbiddenByPolicy",
            )
        if self._visible_deleted(name) is None:
            return error_response(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        del self._secrets[name.lower()]
        return web.Response(status=204)

    # -- helpers -------------------------------------------------------------------------------

    def _bundle(self, name: str, entry: Version, *, with_value: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "id": f"{self.url}/secrets/{name}/{entry.id}",
            "attributes": version_attributes(entry),
        }
        if with_value:
            bundle["value"] = entry.value
        return bundle

    def _deleted_bundle(self, secret: Secret) -> dict[str, Any]:
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

    def _deleted_conflict(self, name: str, secret: Secret) -> web.Response:
        if self.faults.lowkey_errors:
            return error_response(409, "AlreadyExistsException", f"Secret {name} is deleted.")
        if secret.lag > 0:
            secret.lag -= 1
            return error_response(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted.",
                inner="ObjectIsBeingDeleted",
            )
        return error_response(
            409,
            "Conflict",
            f"Secret {name} is currently in a deleted but recoverable "
            "state, and its name cannot be reused; in this state, the secret can only "
            "be recovered or purged.",
            inner="ObjectIsDeletedButRecoverable",
        )

    def _not_found(self, name: str) -> web.Response:
        code = "NotFoundException" if self.faults.lowkey_errors else "SecretNotFound"
        return error_response(
            404, code, f"A secret with (name/id) {name} was not found in this key vault."
        )


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_token_request(request: web.Request) -> bool:
    route = request.match_info.route.resource
    return route is not None and route.canonical == _TOKEN_ROUTE
