"""aiokes on Azure Key Vault, end to end: the real server, the Azure keystore, the Azure SDK
and azure-identity, against the fake vault of ``bench/fakevault/vault.py`` over HTTPS.

lowkey-vault cannot be had on this machine (it is not on Maven Central), so the fake is the
Azure stand-in here; ``tests/keystore/test_azure.py`` runs the keystore alone against
lowkey-vault where it exists. Covered: the operator tutorial with ``keystore: azure``
(issue 3, point 5), data written by KES served by aiokes and the other way round, and what
clients and the error log see when the vault refuses, throttles or cannot store a name.

The servers' vault endpoint is a :class:`VaultLink` in front of the fake, a TCP pass-through
that the cache tests (``tests/test_cache_server.py``) cut to make a real outage.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from aiokes.cache import KeyCache
from aiokes.client import Client
from aiokes.config import ListenAddress, load_config
from aiokes.crypto import KeyVersion, parse_key_version
from aiokes.server import Server
from bench.fakevault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault
from tests.cli.conftest import ainvoke, invoke
from tests.conftest import ClientIdentity, make_identity
from tests.crypto.vectors import JSON_AES, JSON_RECORD_VECTORS, PROTOBUF_RECORD
from tests.server_process import config_head
from tests.tutorial import tutorial_config
from tests.vault_link import VaultLink

VERSIONS = ("GET", "/secrets/{name}/versions")
GET_VERSION = ("GET", "/secrets/{name}/{version}")
PROBE = ("GET", "unmatched")  # the status probe: an unauthenticated GET of the endpoint
TOKEN = ("POST", "/{tenant}/oauth2/v2.0/token")
# The client secret comes from the environment, as with a systemd EnvironmentFile.
SECRET_VARIABLE = "AIOKES_TEST_VAULT_CLIENT_SECRET"


def keystore_yaml(endpoint: str, ca_file: str, **options: object) -> str:
    """The ``keystore.azure`` block for a vault at ``endpoint`` served by the fake's token
    endpoint; ``options`` are further ``keyvault`` keys (aiokes's extensions)."""
    extra = "".join(f"      {name}: {value}\n" for name, value in options.items())
    return (
        "keystore:\n"
        "  azure:\n"
        "    keyvault:\n"
        f"      endpoint: {endpoint}\n"
        "      credentials:\n"
        f"        tenant_id: {TENANT_ID}\n"
        f"        client_id: {CLIENT_ID}\n"
        f"        client_secret: ${{{SECRET_VARIABLE}}}\n"
        f"      authority_host: {endpoint}\n"
        f"      ca: {ca_file}\n"
    ) + extra


# -- a server on the vault --------------------------------------------------------------------


class _Lines(logging.Handler):
    """Collects the records of the ``aiokes.error`` logger as (level, message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))

    def errors(self) -> list[str]:
        return [message for level, message in self.records if level >= logging.ERROR]


@dataclass
class AzureServer:
    """A started server on the fake vault (through the link), with an admin client."""

    server: Server
    vault: FakeVault
    link: VaultLink
    admin: ClientIdentity
    ca_file: str
    log: _Lines
    _clients: list[Client] = field(default_factory=list)

    @property
    def keys(self) -> KeyCache[KeyVersion]:
        keys = self.server.state.master_keys
        assert isinstance(keys, KeyCache)  # a one-process server holds the cache itself
        return keys

    def client(self) -> Client:
        client = Client(
            f"https://127.0.0.1:{self.server.port}",
            cert_file=self.admin.cert_file,
            key_file=self.admin.key_file,
            ca_file=self.ca_file,
        )
        self._clients.append(client)
        return client

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """One raw request as the admin: (status, body)."""
        payload = None if body is None else json.dumps(body).encode()
        status, _, content = await self.client().request(method, path, payload)
        return status, content

    def vault_requests(self) -> int:
        """Requests the fake has answered, token requests included."""
        return sum(self.vault.requests.values())

    def vault_reads(self) -> tuple[int, int]:
        """The requests a key read makes at the fake: (versions listings, version gets).
        A create lists the versions too (to confirm that its version is the oldest)."""
        return self.vault.count(*VERSIONS), self.vault.count(*GET_VERSION)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        logging.getLogger("aiokes.error").removeHandler(self.log)
        await self.server.stop()


StartAzure = Callable[..., Awaitable[AzureServer]]


@pytest.fixture
async def start_azure(
    tmp_path: Path,
    tls_ca: trustme.CA,
    vault: FakeVault,
    link: VaultLink,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StartAzure]:
    """Start a server on the vault. The cache's periodic jobs are an hour away, so only the
    test runs them; retries are fast (2 retries, 20 ms apart at most) unless overridden."""
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    certificate = tls_ca.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    tls_ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    admin = make_identity(tmp_path, "admin")
    running: list[AzureServer] = []

    async def start(*, offline: str = "0", **vault_options: object) -> AzureServer:
        options = {"max_retries": 2, "retry_max_delay": "20ms", **vault_options}
        config_file = tmp_path / "config.yml"
        config_file.write_text(
            _server_yaml(tmp_path, admin.identity, offline)
            + keystore_yaml(link.url, vault.ca_file, **options)
        )
        server = Server(load_config(config_file), address=ListenAddress("127.0.0.1", 0))
        await server.start()
        log = _Lines()  # after start: starting (re)configures the logger's handlers
        logging.getLogger("aiokes.error").addHandler(log)
        handle = AzureServer(server, vault, link, admin, str(tmp_path / "ca.crt"), log)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        await handle.aclose()


def _server_yaml(directory: Path, admin: str, offline: str) -> str:
    return (
        "version: v1\naddress: 127.0.0.1:0\n"
        + config_head(directory, admin)
        + f"cache:\n  expiry:\n    any: 1h\n    unused: 1h\n    offline: {offline}\n"
    )


# -- the operator tutorial with keystore: azure (issue 3, point 5) ----------------------------


@dataclass
class Tutorial:
    """Steps 2 to 4 of the tutorial done, on the fake vault; ``env`` is step 5's."""

    vault: FakeVault
    config_file: Path
    client_identity: str
    env: dict[str, str] = field(default_factory=dict)
    server: Server | None = None

    async def start_server(self) -> None:
        """``aiokes server --config config.yml --auth off``, on a free port."""
        self.server = Server(load_config(self.config_file), address=ListenAddress("127.0.0.1", 0))
        await self.server.start()
        self.env = {
            "KES_SERVER": f"https://127.0.0.1:{self.server.port}",
            "KES_CLIENT_CERT": "client.crt",
            "KES_CLIENT_KEY": "client.key",
        }

    async def stop_server(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def kes(self, *args: str) -> dict[str, str]:
        """One ``aiokes`` client command (``-k``: the server certificate is self-signed);
        returns its JSON output, ``{}`` if it printed nothing."""
        result = await ainvoke([*args, "-k"], self.env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if result.stdout else {}


@pytest.fixture
async def tutorial(
    tmp_path: Path, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Tutorial]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    assert invoke(["identity", "new", "--ip", "127.0.0.1", "localhost"]).exit_code == 0
    created = invoke(["identity", "new", "--key=client.key", "--cert=client.crt", "MyApp"])
    client_identity = created.stdout.split("Identity:", 1)[1].split()[0]
    config_file = tmp_path / "config.yml"
    config_file.write_text(
        tutorial_config(client_identity, keystore_yaml(vault.url, vault.ca_file))
    )
    steps = Tutorial(vault, config_file, client_identity)
    await steps.start_server()
    yield steps
    await steps.stop_server()


async def test_tutorial_dek_from_one_server_decrypts_on_a_new_server_on_the_same_vault(
    tutorial: Tutorial,
) -> None:
    """``key create``, ``key dek``, restart, ``key decrypt``: the key lives in the vault."""
    assert await tutorial.kes("key", "create", "my-key-1") == {}
    dek = await tutorial.kes("key", "dek", "my-key-1")
    await tutorial.stop_server()
    reads_before = tutorial.vault.count(*VERSIONS)
    await tutorial.start_server()
    decrypted = await tutorial.kes("key", "decrypt", "my-key-1", dek["ciphertext"])
    assert decrypted["plaintext"] == dek["plaintext"]
    assert len(base64.b64decode(dek["plaintext"])) == 32
    assert tutorial.vault.count(*VERSIONS) == reads_before + 1  # the new server read it


async def test_tutorial_key_is_one_secret_of_its_name_holding_a_kes_e5_record(
    tutorial: Tutorial,
) -> None:
    """The secret's value is what KES writes since R-2024-02: standard base64 of a protobuf
    KeyVersion (spec §5.7), whose key is the one the DEK was sealed with."""
    await tutorial.kes("key", "create", "my-key-1")
    dek = await tutorial.kes("key", "dek", "my-key-1")
    [value] = tutorial.vault.values("my-key-1")
    record = base64.b64decode(value, validate=True)
    # Field 1 (SecretKey, 36 bytes) holding field 1 (the 32-byte key): as KES's own vector.
    assert record[:4] == bytes.fromhex("0a240a20") == base64.b64decode(PROTOBUF_RECORD)[:4]
    version = parse_key_version(value.encode())
    assert version.hmac_key is not None
    assert len(version.hmac_key) == 32
    assert version.created_by == tutorial.client_identity
    ciphertext = base64.b64decode(dek["ciphertext"])
    assert version.key.decrypt(ciphertext) == base64.b64decode(dek["plaintext"])


async def test_tutorial_serves_a_key_record_kes_wrote_as_json(tutorial: Tutorial) -> None:
    """A KES ≤ v0.18 record (JSON, all-zero key) put into the vault by another writer opens
    KES's own ciphertext; ``key create`` of that name leaves the record alone."""
    record = next(vector.record for vector in JSON_RECORD_VECTORS if vector.name == "e1-zero")
    tutorial.vault.set_version("my-key-from-kes", record.decode())
    ciphertext = base64.b64encode(JSON_AES).decode()
    decrypted = await tutorial.kes("key", "decrypt", "my-key-from-kes", ciphertext)
    assert base64.b64decode(decrypted["plaintext"]) == bytes(16)  # KES_HEAD's vector
    refused = await ainvoke(["key", "create", "my-key-from-kes", "-k"], tutorial.env)
    assert refused.stderr == "Error: failed to create key 'my-key-from-kes': key already exists\n"
    assert tutorial.vault.values("my-key-from-kes") == [record.decode()]


async def test_tutorial_serves_a_key_record_kes_wrote_as_protobuf(tutorial: Tutorial) -> None:
    """KES_HEAD's E5 record vector in the vault: a DEK from aiokes opens with that key."""
    tutorial.vault.set_version("my-key-from-kes", PROTOBUF_RECORD.decode())
    dek = await tutorial.kes("key", "dek", "my-key-from-kes")
    kes_key = parse_key_version(PROTOBUF_RECORD).key
    plaintext = kes_key.decrypt(base64.b64decode(dek["ciphertext"]))
    assert plaintext == base64.b64decode(dek["plaintext"])


# -- vault failures as clients and the error log see them (issue 3, point 3) ------------------

READ_FAILED = (502, b'{"message":"failed to read key"\n}')
CREATE_FAILED = (502, b'{"message":"failed to create key"\n}')
THROTTLED = (
    "HTTP 429 Throttled: Request was not processed because too many requests were received. "
    "Reason: VaultRequestTypeLimitReached"
)


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every library logger at DEBUG (azure-core, azure-identity, msal), for leak checks."""
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_credentials_logged(azure: AzureServer, every_log: pytest.LogCaptureFixture) -> None:
    """Neither aiokes's error log nor any library logger shows the client secret, a bearer
    token or a stored key record."""
    messages = [message for _, message in azure.log.records]
    messages += [record.getMessage() for record in every_log.records]
    records = azure.vault.values("my-key")
    for message in messages:
        assert CLIENT_SECRET not in message
        assert "fake-token-" not in message
        assert not any(record in message for record in records)


async def test_vault_authentication_failure_answers_502_and_logs_the_entra_error(
    start_azure: StartAzure, every_log: pytest.LogCaptureFixture
) -> None:
    azure = await start_azure()
    azure.vault.faults.token_failures = 1
    assert await azure.call("POST", "/v1/key/generate/my-key") == READ_FAILED
    [line] = azure.log.errors()
    subject = f"failed to read key 'my-key': azure key vault {azure.link.vault}: get key 'my-key'"
    assert line.startswith(f"{subject}: authentication failed: ")
    assert "invalid_client" in line  # Entra ID's error codes
    assert "AADSTS7000215" in line
    assert azure.vault.count(*TOKEN) == 1  # a refused client secret is not retried
    assert_no_credentials_logged(azure, every_log)


async def test_vault_permission_denied_answers_502_and_logs_the_status(
    start_azure: StartAzure, every_log: pytest.LogCaptureFixture
) -> None:
    azure = await start_azure()
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    azure.vault.faults.fail_status, azure.vault.faults.fail_next = 403, 1
    reads = azure.vault.count(*VERSIONS)
    assert await azure.call("POST", "/v1/key/generate/my-key") == READ_FAILED
    assert azure.log.errors() == [
        f"failed to read key 'my-key': azure key vault {azure.link.vault}: get key 'my-key': "
        "HTTP 403 InternalServerError: injected failure"
    ]
    assert azure.vault.count(*VERSIONS) == reads + 1  # a 403 is not retried
    assert_no_credentials_logged(azure, every_log)


@pytest.mark.parametrize(
    ("retry_after", "attempts"),
    [
        pytest.param(None, 3, id="backoff-until-the-budget-of-2-retries-is-spent"),
        pytest.param("60", 1, id="retry-after-beyond-retry_max_delay-is-not-waited-for"),
    ],
)
async def test_throttling_beyond_the_retry_budget_answers_502(
    start_azure: StartAzure,
    every_log: pytest.LogCaptureFixture,
    retry_after: str | None,
    attempts: int,
) -> None:
    azure = await start_azure(max_retries=2)
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    azure.vault.faults.throttle_next, azure.vault.faults.retry_after = 100, retry_after
    reads = azure.vault.count(*VERSIONS)
    async with asyncio.timeout(10):  # far beyond 20 ms of backoff; nowhere near 60 s
        assert await azure.call("POST", "/v1/key/generate/my-key") == READ_FAILED
    assert azure.vault.count(*VERSIONS) == reads + attempts
    assert azure.log.errors() == [
        f"failed to read key 'my-key': azure key vault {azure.link.vault}: get key 'my-key': "
        + THROTTLED
    ]
    assert_no_credentials_logged(azure, every_log)


async def test_without_purge_permission_delete_soft_deletes_and_recreate_says_what_to_do(
    start_azure: StartAzure, every_log: pytest.LogCaptureFixture
) -> None:
    """A deleted key stays soft-deleted: it is gone for readers, and its name is reserved
    (the tombstone) until every server's cache must have dropped it. After that, creating
    the name again fails without the Purge permission until someone purges or recovers the
    secret; with the permission back, the next create purges it itself."""
    azure = await start_azure()
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    azure.vault.faults.purge_forbidden = True
    assert await azure.call("DELETE", "/v1/key/delete/my-key") == (200, b"")
    assert azure.vault.is_soft_deleted("my-key")
    assert await azure.call("POST", "/v1/key/generate/my-key") == (
        404,
        b'{"message":"key does not exist"\n}',
    )
    status, body = await azure.call("POST", "/v1/key/create/my-key")
    assert status == 409
    assert b"key 'my-key' was deleted at " in body
    azure.vault.age_deletion("my-key", 3611)  # the reuse wait here: expiry.any 1h + 10 s
    assert await azure.call("POST", "/v1/key/create/my-key") == CREATE_FAILED
    assert azure.log.errors() == [
        f"failed to create key 'my-key': azure key vault {azure.link.vault}: create key "
        "'my-key': the name is taken by a soft-deleted secret and this identity may not purge "
        "it (HTTP 403 Forbidden/ForbiddenByPolicy: The user, group or application does not "
        "have secrets purge permission on key vault 'fake'.): recover it (az keyvault secret "
        "recover --name my-key) or purge it (az keyvault secret purge --name my-key), then "
        "try again"
    ]
    azure.vault.faults.purge_forbidden = False
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    assert len(azure.vault.values("my-key")) == 1
    assert_no_credentials_logged(azure, every_log)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/v1/key/create/"),
        ("POST", "/v1/key/generate/"),
        ("GET", "/v1/key/describe/"),
        ("DELETE", "/v1/key/delete/"),
    ],
)
async def test_key_name_with_underscore_is_refused_with_400_without_asking_the_vault(
    start_azure: StartAzure, method: str, route: str
) -> None:
    """KES allows ``_`` in key names, Key Vault does not: a clear 400, not KES's 502."""
    azure = await start_azure()
    requests = azure.vault_requests()
    assert await azure.call(method, route + "my_key") == (
        400,
        b'{"message":"key name \'my_key\' is not supported by the Azure Key Vault keystore: '
        b"only letters, digits and '-' are allowed\"\n}",
    )
    assert azure.vault_requests() == requests
    assert azure.log.errors() == []


async def test_delete_keeps_the_soft_deleted_secret_as_the_tombstone(
    start_azure: StartAzure,
) -> None:
    """With tombstones (always, from a config file) delete does not purge: the soft-deleted
    secret's deletion date is what reserves the name; a later create purges it."""
    azure = await start_azure()
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    assert await azure.call("DELETE", "/v1/key/delete/my-key") == (200, b"")
    assert azure.vault.is_soft_deleted("my-key")
    assert azure.vault.count("DELETE", "/deletedsecrets/{name}") == 0
