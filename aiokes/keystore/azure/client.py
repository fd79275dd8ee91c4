"""How aiokes talks to Key Vault: one aiohttp session, one credential, bounded retries.

The vault client and the credential share one pooled ``aiohttp.ClientSession`` whose
connector carries the TLS context, built once. (Passing ``connection_verify=<file>`` to the
SDK instead would build a new SSL context per request, and with it a new connection.)
azure-core's retry policy retries 408/429/5xx and transport errors with exponential backoff
and honours ``Retry-After``; we bound it in count, per-attempt timeout, backoff and total
time, and refuse to wait out a ``Retry-After`` longer than the configured maximum delay.

Three time limits, so that a vault that accepts connections and never answers ("frozen")
cannot hold a request until the route's timeout (503) or slow ``/v1/status`` down:
``timeout`` bounds one HTTP attempt, ``operation_timeout`` one keystore call with all its
retries and back-off (then 502, KES's answer for a keystore failure), and ``status_timeout``
the reachability probe behind ``/v1/status`` and ``/v1/ready``. The operation limit is kept
below the routes' default timeout (15 s) so the keystore's answer, not the route's, wins.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.keyvault.secrets.aio import SecretClient

from aiokes.errors import ConfigError
from aiokes.keystore.azure.settings import AzureKeyVaultSettings

__all__ = ["BoundedRetryPolicy", "VaultConnection", "connect"]

# Exponential backoff: 0, 2*f, 4*f, ... seconds, capped at retry_max_delay.
_BACKOFF_FACTOR = 0.4


def _retry_options(settings: AzureKeyVaultSettings) -> dict[str, Any]:
    """Keyword arguments for azure-core's retry policy and transport."""
    return {
        "retry_total": settings.max_retries,
        # A refused or failed connection means the vault cannot be reached: one retry covers
        # a blip; more would only delay the 502 that makes MinIO fail over to another KES.
        "retry_connect": min(1, settings.max_retries),
        "retry_read": settings.max_retries,
        "retry_status": settings.max_retries,
        "retry_backoff_factor": _BACKOFF_FACTOR,
        "retry_backoff_max": settings.retry_max_delay,
        "timeout": _request_budget(settings),
    }


def _request_budget(settings: AzureKeyVaultSettings) -> float:
    """Upper bound of one logical request: every attempt plus every backoff sleep, and
    never more than one keystore operation may take."""
    attempts = (
        settings.timeout * (settings.max_retries + 1)
        + settings.retry_max_delay * settings.max_retries
    )
    return min(attempts, settings.operation_timeout)


class BoundedRetryPolicy(AsyncRetryPolicy):  # type: ignore[type-arg]
    """azure-core's retry policy, minus unbounded waits.

    A ``Retry-After`` longer than ``retry_backoff_max`` ends the retries at once: the request
    fails as throttled instead of sleeping past every route timeout.
    """

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.backoff_max:
            return False
        return bool(super().is_retry(settings, response))


@dataclass(slots=True)
class VaultConnection:
    """The open client, its credential and the session they share."""

    session: aiohttp.ClientSession
    client: SecretClient
    credential: AsyncTokenCredential
    owns_credential: bool

    async def aclose(self) -> None:
        try:
            await self.client.close()
        finally:
            try:
                if self.owns_credential:
                    await self.credential.close()
            finally:
                await self.session.close()


def connect(
    settings: AzureKeyVaultSettings, credential: AsyncTokenCredential | None = None
) -> VaultConnection:
    """Build session, credential and client. No I/O; must run inside the event loop."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=_ssl_context(settings.ca_file)),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # as azure-core's own session: its pipeline decodes bodies
        trust_env=True,  # HTTPS_PROXY and friends, as the SDK honours them by default
    )
    owns_credential = credential is None
    if credential is None:
        credential = _build_credential(settings, session)
    client = SecretClient(
        settings.endpoint,
        credential,
        api_version=settings.api_version,
        verify_challenge_resource=not _is_loopback(settings.endpoint),
        transport=_transport(settings, session),
        retry_policy=BoundedRetryPolicy(**_retry_options(settings)),
    )
    return VaultConnection(session, client, credential, owns_credential)


def _build_credential(
    settings: AzureKeyVaultSettings, session: aiohttp.ClientSession
) -> AsyncTokenCredential:
    authority = {"authority": settings.authority_host} if settings.authority_host else {}
    transport = _transport(settings, session)
    if settings.client_secret:
        return ClientSecretCredential(
            settings.tenant_id,
            settings.client_id,
            settings.client_secret,
            transport=transport,
            retry_policy_class=BoundedRetryPolicy,
            **authority,
            **_retry_options(settings),
        )
    if settings.managed_identity_client_id:
        return ManagedIdentityCredential(
            client_id=settings.managed_identity_client_id, transport=transport
        )
    return DefaultAzureCredential(transport=transport, **authority)


def _transport(settings: AzureKeyVaultSettings, session: aiohttp.ClientSession) -> AioHttpTransport:
    return AioHttpTransport(
        session=session,
        session_owner=False,
        connection_timeout=settings.timeout,
        read_timeout=settings.timeout,
    )


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    """The system's trust store, plus ``ca_file`` (a private endpoint's CA, an emulator's).

    Added rather than pinned: the same session also reaches the Entra ID token endpoint,
    whose certificate a private CA bundle would not cover.
    """
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"azure ca_file '{ca_file}' is not a usable CA bundle: {exc}"
            ) from exc
    return context


def _is_loopback(url: str) -> bool:
    """True for an emulator on this machine, whose challenge cannot name a vault domain.

    The SDK checks that the challenge's resource is a parent domain of the vault's host
    (``*.vault.azure.net``); that can never hold for ``127.0.0.1`` or ``localhost``, so the
    check is skipped there and only there.
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
