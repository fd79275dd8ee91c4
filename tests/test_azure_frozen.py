"""A frozen Key Vault (issue 12, item 6): it accepts TCP connections and never answers.

The vault endpoint is a real listener on 127.0.0.1 that accepts and then stays silent (no TLS
handshake, no HTTP); Entra ID tokens come from the fake of ``bench/fakevault/vault.py``. The
keystore's own limits (``operation_timeout``, ``status_timeout``) are set below the routes'
timeouts and the per-attempt ``timeout`` above them, so which limit fired shows in the answer:
KES's 502 (and 200 for ``/v1/status``) means the keystore's, 503 ``request timed out`` the
route's. No wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from aiokes.client import Client
from aiokes.config import ListenAddress, load_config
from aiokes.errors import APIError, KeystoreUnreachable
from aiokes.server import Server
from bench.fakevault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault
from tests.azure_emulator import azure_keystore
from tests.conftest import ClientIdentity, make_identity

# The per-attempt limit is far above every route's timeout: only the keystore's operation
# and status limits can answer before the route gives up.
ATTEMPT_TIMEOUT = "60s"
ROUTE_TIMEOUT = "5s"


@pytest.fixture
async def frozen_vault() -> AsyncIterator[str]:
    """The URL of a vault that accepts connections and never says a word."""
    release = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await release.wait()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        release.set()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def token_service(tmp_path: Path) -> AsyncIterator[FakeVault]:
    async with FakeVault.running(tmp_path) as fake:
        yield fake


async def test_keystore_operation_limit_ends_retries_on_a_frozen_vault(
    frozen_vault: str, token_service: FakeVault
) -> None:
    store = azure_keystore(
        frozen_vault,
        **token_service.credentials(),
        ca_file=token_service.ca_file,
        timeout=60,
        max_retries=4,
        operation_timeout=0.5,
        status_timeout=0.2,
    )
    try:
        with pytest.raises(KeystoreUnreachable, match=r"operation_timeout 0\.5 s") as raised:
            await store.get("my-key")
        assert "get key 'my-key'" in str(raised.value)
        with pytest.raises(KeystoreUnreachable, match=r"status: .*no answer within 0\.2 s"):
            await store.status()
    finally:
        await store.close()


def _config(directory: Path, admin: ClientIdentity, endpoint: str, vault: FakeVault) -> str:
    return textwrap.dedent(
        f"""\
        admin:
          identity: {admin.identity}
        tls:
          key: {directory}/server.key
          cert: {directory}/server.crt
        api:
          /v1/key/generate/:
            timeout: {ROUTE_TIMEOUT}
          /v1/key/create/:
            timeout: {ROUTE_TIMEOUT}
          /v1/status:
            timeout: {ROUTE_TIMEOUT}
          /v1/ready:
            timeout: {ROUTE_TIMEOUT}
        log:
          audit: off
        keystore:
          azure:
            keyvault:
              endpoint: {endpoint}
              credentials:
                tenant_id: {TENANT_ID}
                client_id: {CLIENT_ID}
                client_secret: {CLIENT_SECRET}
              authority_host: {vault.url}
              ca: {vault.ca_file}
              timeout: {ATTEMPT_TIMEOUT}
              max_retries: 4
              retry_max_delay: 100ms
              operation_timeout: 1s
              status_timeout: 300ms
        """
    )


async def test_frozen_vault_answers_kes_502_and_status_before_the_route_timeout(
    tmp_path: Path, tls_ca: trustme.CA, frozen_vault: str, token_service: FakeVault
) -> None:
    issued = tls_ca.issue_cert("127.0.0.1")
    issued.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    admin = make_identity(tmp_path, "admin")
    config_file = tmp_path / "config.yml"
    config_file.write_text(_config(tmp_path, admin, frozen_vault, token_service))
    server = Server(load_config(config_file), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))

    def client() -> Client:  # a new connection per request
        return Client(
            f"https://127.0.0.1:{server.port}",
            cert_file=admin.cert_file,
            key_file=admin.key_file,
            ca_file=str(ca_file),
        )

    calls: list[tuple[Callable[[Client], Awaitable[object]], str]] = [
        (lambda c: c.generate_key("uncached"), "failed to read key"),
        (lambda c: c.create_key("new-key"), "failed to create key"),
    ]
    try:
        for call, message in calls:
            async with client() as kes:
                with pytest.raises(APIError) as raised:
                    await call(kes)
            assert (raised.value.status, raised.value.message) == (502, message)
        async with client() as kes:
            status = await kes.status()
        assert (status["keystore_unreachable"], status["keystore_unavailable"]) == (True, True)
        async with client() as kes:
            with pytest.raises(APIError) as raised:
                await kes.ready()
        assert (raised.value.status, raised.value.message) == (504, "key store is not reachable")
    finally:
        await server.stop()
