"""The Azure Key Vault keystore, interchangeable with KES's ``azure`` keystore.

One KES key is one Key Vault *secret* of the same name; its value is the stored key record
as text, and its **oldest version** is the key (see :mod:`.versions`). aiokes never
reads "latest": a later PUT, by anyone, cannot replace a key.

Create is create-only, which Key Vault cannot do atomically, so it is emulated as KES does
and then checked: look for the secret, write a version, then list the versions and accept
only if the oldest one is ours. A writer that lost the race answers ``KeyExists`` and leaves
the winner alone. Its own losing version stays too, enabled: disabling it would make the
"latest" version disabled, which KES (and our own existence check) report as an error.
Within one process, creates of a name are serialized, so they cannot race at all. Across
servers one window stays open, as in KES: two PUTs in the same second, the second of which
becomes visible only after the first writer listed. Both then report success, while every
reader still serves the same (oldest) version.

A soft-deleted secret of the same name blocks the write with 409; it is purged (bounded
retries) when the identity may purge, else the operator is told to recover or purge it.
Delete is a soft delete followed by a purge where permitted; without the purge permission
the secret stays soft-deleted, which is fine for readers and is cleaned up by a later create.
With a ``reuse_wait`` (set from the cache expiry by the config) the soft-deleted secret is the
deleted name's tombstone (:mod:`aiokes.keystore._tombstone`): it is not purged on delete, and
a create of the name is refused until ``deletedDate + reuse_wait``; after that the create
purges it as above.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.secrets.aio import SecretClient

from aiokes.errors import APIError, KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keystore import KeystoreState, Page, paginate
from aiokes.keystore._tombstone import Tombstone, reserved
from aiokes.keystore.azure.client import VaultConnection, connect
from aiokes.keystore.azure.errors import (
    VaultProblem,
    describe_http_error,
    translate_azure_errors,
)
from aiokes.keystore.azure.locks import NameLocks
from aiokes.keystore.azure.settings import AzureKeyVaultSettings
from aiokes.keystore.azure.versions import SecretVersion, oldest, unusable_reason
from aiokes.log import error_logger

__all__ = ["AzureKeyVaultKeystore"]


# Key Vault object names (secrets.json: ^[0-9a-zA-Z-]+$, 1-127 characters).
_SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
# PUT attempts while a soft-deleted secret blocks the name, and purge attempts after a
# delete while Key Vault is still moving the secret into its deleted collection.
_RECREATE_ATTEMPTS = 8
_PURGE_ATTEMPTS = 6
_PAUSE_FIRST, _PAUSE_MAX = 0.25, 2.0


class AzureKeyVaultKeystore:
    """A :class:`~aiokes.keystore.Keystore` over the secrets of one Azure Key Vault."""

    def __init__(
        self, settings: AzureKeyVaultSettings, *, credential: AsyncTokenCredential | None = None
    ) -> None:
        self._settings = settings
        self._credential = credential  # given by tests; then the caller closes it
        self._connection: VaultConnection | None = None
        self._closed = False
        self._create_locks = NameLocks()

    @property
    def endpoint(self) -> str:
        return self._settings.endpoint

    def __repr__(self) -> str:
        return f"AzureKeyVaultKeystore({self._settings.endpoint!r})"

    async def open(self) -> None:
        """Build the client, credential and HTTP session. Makes no request. Idempotent."""
        if self._closed:
            raise KeystoreError(f"azure key vault {self._settings.vault}: keystore is closed")
        if self._connection is None:
            self._connection = connect(self._settings, self._credential)

    async def close(self) -> None:
        """Close client, credential and session. Idempotent."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def create(self, name: str, value: bytes) -> None:
        _check_name(name)
        text = _record_text(name, value)
        async with self._create_locks.hold(name), self._operation("create", name) as client:
            await self._refuse_existing(client, name)
            ours = await self._put(client, name, text)
            if not await self._is_oldest(client, name, ours, text):
                raise KeyExists()

    async def get(self, name: str) -> bytes:
        _check_name(name)
        async with self._operation("get", name) as client:
            key = oldest(await _versions(client, name))
            if key is None:
                raise KeyNotFound()
            _refuse_unusable(key, "cannot serve it")
            try:
                secret = await client.get_secret(name, key.version)
            except ResourceNotFoundError:  # deleted between listing and reading
                raise KeyNotFound() from None
            if secret.value is None:
                raise VaultProblem(f"version {key.version} has no value")
            return secret.value.encode("utf-8")

    async def delete(self, name: str) -> None:
        _check_name(name)
        async with self._operation("delete", name) as client:
            response = await client.send_request(HttpRequest("DELETE", f"/secrets/{name}"))
            if response.status_code == 404:
                raise KeyNotFound()
            response.raise_for_status()
            if self._settings.reuse_wait > 0:
                if not _has_recovery_id(response.text()):
                    error_logger.warning(
                        "azure: soft delete is off for this vault: '%s' leaves no tombstone "
                        "and its name can be reused at once",
                        name,
                    )
                return  # the soft-deleted secret is the tombstone; a later create purges it
            if _has_recovery_id(response.text()):  # soft delete is on: free the name
                await self._purge_deleted(client, name)

    async def tombstone(self, name: str) -> Tombstone | None:
        _check_name(name)
        async with self._operation("read deleted", name) as client:
            try:
                deleted = await client.get_deleted_secret(name)
            except ResourceNotFoundError:
                return None
            return _tombstone_of(name, deleted.deleted_date)

    async def tombstones(self) -> list[Tombstone]:
        async with self._operation("list deleted") as client:
            found = [
                _tombstone_of(item.name, item.deleted_date)
                async for item in client.list_deleted_secrets()
                if item.name
            ]
        return sorted(found, key=lambda tombstone: tombstone.name)

    async def forget_deletion(self, name: str) -> None:
        _check_name(name)
        async with self._operation("purge", name) as client:
            await self._purge_blocking_secret(client, name)

    async def list(self, prefix: str, limit: int = -1) -> Page:
        async with self._operation("list") as client:
            names = [item.name async for item in client.list_properties_of_secrets() if item.name]
        return paginate(names, prefix, limit)

    async def status(self) -> KeystoreState:
        """Unauthenticated GET of the endpoint: any HTTP answer means reachable, as in KES."""
        await self.open()
        assert self._connection is not None
        limit = self._settings.status_timeout
        started = time.perf_counter()
        try:
            async with self._connection.session.get(
                self._settings.endpoint,
                timeout=aiohttp.ClientTimeout(total=limit),
                allow_redirects=False,
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = str(exc) or f"no answer within {limit:g} s"
            raise KeystoreUnreachable(
                f"azure key vault {self._settings.vault}: status: not reachable: "
                f"{type(exc).__name__}: {detail}"
            ) from exc
        return KeystoreState(latency=time.perf_counter() - started)

    @asynccontextmanager
    async def _operation(self, operation: str, name: str = "") -> AsyncIterator[SecretClient]:
        """Open on first use, bound the whole operation in time, translate Azure errors.

        The bound covers every request, retry, back-off and token refresh of the operation;
        when it expires the operation fails as unreachable (502), before the route's timeout.
        """
        limit = self._settings.operation_timeout
        with translate_azure_errors(self._settings.vault, operation, name):
            await self.open()
            assert self._connection is not None
            bound = asyncio.timeout(limit)
            try:
                async with bound:
                    yield self._connection.client
            except TimeoutError:
                if not bound.expired():
                    raise
                raise TimeoutError(f"no answer within operation_timeout {limit:g} s") from None

    async def _refuse_existing(self, client: SecretClient, name: str) -> None:
        """KES's existence check: any current version means the key exists."""
        try:
            latest = await client.get_secret(name)
        except ResourceNotFoundError:  # absent, or soft-deleted
            return
        version = SecretVersion.from_properties(latest.properties)
        if version is not None:
            _refuse_unusable(version, "refusing to create it")
        raise KeyExists()

    async def _put(self, client: SecretClient, name: str, text: str) -> SecretVersion:
        """Write a new version; clear a soft-deleted secret of that name out of the way."""
        conflict: ResourceExistsError | None = None
        for attempt in range(_RECREATE_ATTEMPTS):
            if conflict is not None:
                if attempt == 1 and self._settings.reuse_wait > 0:
                    await self._refuse_reserved(client, name)
                await self._purge_blocking_secret(client, name)
                await asyncio.sleep(_pause(attempt - 2))  # none right after the first purge
            try:
                secret = await client.set_secret(name, text)
            except ResourceExistsError as exc:  # 409: the name is held by a deleted secret
                conflict = exc
                continue
            version = SecretVersion.from_properties(secret.properties)
            if version is None:
                raise VaultProblem("the written version has no version id or creation time")
            return version
        raise VaultProblem(_soft_deleted_message(name, "could not be purged")) from conflict

    async def _refuse_reserved(self, client: SecretClient, name: str) -> None:
        """The soft-deleted secret in the way is a tombstone: is the wait over?"""
        try:
            deleted = await client.get_deleted_secret(name)
            deleted_at = deleted.deleted_date
        except ResourceNotFoundError:  # still moving into the deleted collection: just now
            deleted_at = None
        tombstone = _tombstone_of(name, deleted_at)
        if tombstone.reserves(self._settings.reuse_wait, datetime.now(UTC)):
            raise reserved(tombstone, self._settings.reuse_wait)

    async def _purge_blocking_secret(self, client: SecretClient, name: str) -> None:
        try:
            await client.purge_deleted_secret(name)
        except (ResourceNotFoundError, ResourceExistsError):
            return  # already gone, or still being deleted: the PUT is retried
        except HttpResponseError as exc:
            if exc.status_code == 403:
                detail = f"this identity may not purge it ({describe_http_error(exc)})"
                raise VaultProblem(_soft_deleted_message(name, detail)) from exc
            raise

    async def _is_oldest(
        self, client: SecretClient, name: str, ours: SecretVersion, text: str
    ) -> bool:
        """Did our version win? Settles concurrent creates by other processes or servers."""
        key = oldest([*await _versions(client, name), ours])
        if key is None or key.version == ours.version:
            return True
        # A PUT retried after a lost response leaves two versions of our own record behind.
        winner = await client.get_secret(name, key.version)
        return hmac.compare_digest((winner.value or "").encode(), text.encode())

    async def _purge_deleted(self, client: SecretClient, name: str) -> None:
        """Purge after a soft delete; Key Vault shows the deleted secret only after a while."""
        for attempt in range(_PURGE_ATTEMPTS):
            try:
                await client.purge_deleted_secret(name)
                return
            except (ResourceNotFoundError, ResourceExistsError):
                await asyncio.sleep(_pause(attempt))
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise
                error_logger.info(
                    "azure: secret '%s' stays soft-deleted: %s", name, exc.status_code
                )
                return
        error_logger.warning("azure: secret '%s' is soft-deleted but not purged yet", name)


async def _versions(client: SecretClient, name: str) -> list[SecretVersion]:
    """Every version of the secret (all pages); none if the secret does not exist."""
    found: list[SecretVersion] = []
    try:
        async for properties in client.list_properties_of_secret_versions(name):
            version = SecretVersion.from_properties(properties)
            if version is not None:
                found.append(version)
    except ResourceNotFoundError:
        return []
    return found


def _tombstone_of(name: str, deleted_at: datetime | None) -> Tombstone:
    """A vault that sends no deletion date gets the safe answer: deleted just now."""
    return Tombstone(name, deleted_at or datetime.now(UTC))


def _has_recovery_id(body: str) -> bool:
    """Whether a delete answer says the secret can be recovered, i.e. soft delete is on."""
    try:
        deleted = json.loads(body)
    except ValueError:
        return False
    return isinstance(deleted, dict) and bool(deleted.get("recoveryId"))


def _check_name(name: str) -> None:
    if not _SECRET_NAME.fullmatch(name):
        raise APIError(
            f"key name '{name[:128]}' is not supported by the Azure Key Vault keystore: "
            "only letters, digits and '-' are allowed",
            status=400,
        )


def _record_text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(
            f"azure: key '{name}': record is not UTF-8 text; Key Vault stores text secrets"
        ) from None


def _refuse_unusable(version: SecretVersion, consequence: str) -> None:
    reason = unusable_reason(version, datetime.now(UTC))
    if reason is not None:
        raise VaultProblem(f"secret {reason}: {consequence}")


def _soft_deleted_message(name: str, detail: str) -> str:
    return (
        f"the name is taken by a soft-deleted secret and {detail}: "
        f"recover it (az keyvault secret recover --name {name}) or purge it "
        f"(az keyvault secret purge --name {name}), then try again"
    )


def _pause(attempt: int) -> float:
    """Backoff between create/purge retries: 0, then 0.25 s doubling up to 2 s."""
    return 0.0 if attempt < 0 else min(_PAUSE_MAX, _PAUSE_FIRST * 2**attempt)
