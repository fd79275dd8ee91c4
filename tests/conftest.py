"""Real servers for the tests: mTLS on 127.0.0.1 with a trustme server certificate and
self-signed Ed25519 client certificates (what `aiokes identity new` makes), on the fs keystore.

``start_server`` starts one with a config written as YAML, so every server test also goes
through the config loader. ``server`` is the default: an admin, a tutorial-style policy
client (``app``) and an identity without a policy (``stranger``).
"""

from __future__ import annotations

import datetime
import logging
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import ed25519

from aiokes.certificate import self_signed_certificate, write_certificate, write_private_key
from aiokes.client import Client
from aiokes.config import ListenAddress, load_config
from aiokes.identity import identity_of_public_key
from aiokes.server import Server
from bench.fakevault import FakeVault
from tests.vault_link import VaultLink


@dataclass(frozen=True)
class ClientIdentity:
    name: str
    cert_file: str
    key_file: str
    identity: str


def make_identity(directory: Path, name: str) -> ClientIdentity:
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = self_signed_certificate(
        key, common_name=name, validity=datetime.timedelta(days=1)
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    write_certificate(cert_file, certificate)
    write_private_key(key_file, key)
    return ClientIdentity(
        name, str(cert_file), str(key_file), identity_of_public_key(key.public_key())
    )


@dataclass
class RunningServer:
    server: Server
    directory: Path
    ca_file: str
    admin: ClientIdentity
    app: ClientIdentity
    stranger: ClientIdentity
    config_file: Path
    _clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    @property
    def keystore_dir(self) -> Path:
        return self.directory / "keys"

    def client(self, who: ClientIdentity | None = None, **options: object) -> Client:
        """A client for ``who`` (default: the admin), closed when the test ends."""
        who = who or self.admin
        client = Client(
            self.url,
            cert_file=who.cert_file,
            key_file=who.key_file,
            ca_file=self.ca_file,
            **options,  # type: ignore[arg-type]
        )
        self._clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        await self.server.stop()


StartServer = Callable[..., Awaitable[RunningServer]]


class RecordingHandler(logging.Handler):
    """Keeps every record it is given: for the error log, which does not propagate to
    pytest's ``caplog``."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


def write_server_tls(directory: Path, tls_ca: trustme.CA) -> None:
    """``server.key`` and ``server.crt`` (for 127.0.0.1 and localhost) and the ``ca.crt``
    that verifies them, in ``directory``."""
    certificate = tls_ca.issue_cert("127.0.0.1", "localhost")
    certificate.private_key_pem.write_to_path(str(directory / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    tls_ca.cert_pem.write_to_path(str(directory / "ca.crt"))


def write_server_people(directory: Path, tls_ca: trustme.CA) -> dict[str, ClientIdentity]:
    """:func:`write_server_tls`, and the identities of the default config: ``admin``,
    ``app`` and ``stranger``."""
    write_server_tls(directory, tls_ca)
    return {name: make_identity(directory, name) for name in ("admin", "app", "stranger")}


async def start_default_server(
    directory: Path,
    people: dict[str, ClientIdentity],
    extra: str = "",
    *,
    policy: str | None = None,
) -> RunningServer:
    """A server on the files of :func:`write_server_people`, its config the default one with
    ``extra`` YAML appended; the ``{admin}``/``{app}``/``{stranger}``/``{dir}`` placeholders
    are filled in. Stop it with ``aclose``."""
    config_file = directory / "config.yml"
    text = _default_config(policy) + textwrap.dedent(extra)
    config_file.write_text(text.format(dir=directory, **{k: v.identity for k, v in people.items()}))
    server = Server(load_config(config_file), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    return RunningServer(
        server,
        directory,
        str(directory / "ca.crt"),
        people["admin"],
        people["app"],
        people["stranger"],
        config_file,
    )


@pytest.fixture
async def start_server(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[StartServer]:
    """:func:`start_default_server` in ``tmp_path``; every server it started is stopped when
    the test ends."""
    running: list[RunningServer] = []
    people = write_server_people(tmp_path, tls_ca)

    async def start(extra: str = "", *, policy: str | None = None) -> RunningServer:
        handle = await start_default_server(tmp_path, people, extra, policy=policy)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        await handle.aclose()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()


def _default_config(policy: str | None) -> str:
    policy = policy or textwrap.dedent(
        """\
        policy:
          my-app:
            allow:
            - /v1/key/create/my-key*
            - /v1/key/generate/my-key*
            - /v1/key/decrypt/my-key*
            - /v1/key/describe/my-key*
            deny:
            - /v1/key/generate/my-key-denied*
            identities:
            - {app}
        """
    )
    return (
        textwrap.dedent(
            """\
        version: v1
        address: 127.0.0.1:0
        admin:
          identity: {admin}
        tls:
          key: {dir}/server.key
          cert: {dir}/server.crt
        keystore:
          fs:
            path: {dir}/keys
        log:
          audit: off
        """
        )
        + policy
    )


@pytest.fixture
async def vault(tmp_path: Path) -> AsyncIterator[FakeVault]:
    """The fake Key Vault (bench/fakevault/vault.py) on 127.0.0.1; modules override it for
    variants (paging, clocks, faults set up front)."""
    async with FakeVault.running(tmp_path) as fake:
        yield fake


@pytest.fixture
async def link(vault: FakeVault) -> AsyncIterator[VaultLink]:
    """A pass-through to ``vault`` that a test can cut, hold or restore."""
    link = VaultLink(vault.url)
    await link.start()
    yield link
    link.release()
    await link.cut()
