"""What identifies a client (spec §4.1, §4.2, §4.7): in KES's default mode any certificate,
identified by its public key — CA certificates ignored, validity not checked, API keys as
self-signed Ed25519 certificates; with ``tls.auth: on`` only certificates signed by ``tls.ca``."""

from __future__ import annotations

import datetime
import ssl
import textwrap
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from aiokes.certificate import write_certificate, write_private_key
from aiokes.client import Client
from aiokes.config import ListenAddress, load_config
from aiokes.identity import APIKey, identity_of_certificate, identity_of_public_key
from aiokes.server import Server
from tests.api.helpers import client_context, send
from tests.conftest import RunningServer, StartServer, make_identity, write_server_tls

NO_CERTIFICATE = "tls: client certificate is required"
HANDSHAKE_FAILED = (ssl.SSLError, ConnectionError)


def _certificate(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    *,
    ca: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(minutes=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _context_with(
    server: RunningServer,
    directory: Path,
    certificate: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> ssl.SSLContext:
    cert_file, key_file = directory / "client-test.crt", directory / "client-test.key"
    cert_file.unlink(missing_ok=True)
    key_file.unlink(missing_ok=True)
    write_certificate(cert_file, certificate)
    write_private_key(key_file, key)
    return client_context(server, cert_file=str(cert_file), key_file=str(key_file))


def _admin_key(server: RunningServer) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(server.admin.key_file).read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


# --- what a certificate is -------------------------------------------------------------------


def _allow_all_policy(identity: str) -> str:
    return textwrap.dedent(
        f"""\
        policy:
          everything:
            allow:
            - /v1/*
            identities:
            - {identity}
        """
    )


async def test_ca_certificate_as_client_leaf_is_ignored(
    start_server: StartServer, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    identity = identity_of_public_key(key.public_key())
    server = await start_server(policy=_allow_all_policy(identity))
    as_ca = _context_with(server, tmp_path, _certificate(key, ca=True), key)
    reply = await send(server, "GET", "/v1/key/list/", context=as_ca)
    assert reply.is_error(400, NO_CERTIFICATE), reply
    as_leaf = _context_with(server, tmp_path, _certificate(key, ca=False), key)
    assert (await send(server, "GET", "/v1/key/list/", context=as_leaf)).status == 200


async def test_leaf_with_its_ca_chain_is_identified_by_the_leaf(
    start_server: StartServer, tmp_path: Path
) -> None:
    intermediate = trustme.CA().create_child_ca()
    leaf = intermediate.issue_cert("client.example")
    pem = leaf.cert_chain_pems[0].bytes()
    identity = identity_of_certificate(x509.load_pem_x509_certificate(pem))
    server = await start_server(policy=_allow_all_policy(identity))
    chain_file, key_file = tmp_path / "chain.pem", tmp_path / "leaf.key"
    chain_file.write_bytes(pem + intermediate.cert_pem.bytes())
    leaf.private_key_pem.write_to_path(str(key_file))
    context = client_context(server, cert_file=str(chain_file), key_file=str(key_file))
    reply = await send(server, "GET", "/v1/identity/self/describe", context=context)
    assert reply.json()["identity"] == identity
    assert (await send(server, "GET", "/v1/key/list/", context=context)).status == 200


@pytest.mark.parametrize("when", ["expired", "not-yet-valid"])
async def test_certificate_validity_is_not_checked_in_default_mode(
    server: RunningServer, tmp_path: Path, when: str
) -> None:
    """Identity is the public key; KES does not look at the validity period."""
    key = _admin_key(server)
    now = datetime.datetime.now(datetime.UTC)
    if when == "expired":
        window = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
    else:
        window = (now + datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    certificate = _certificate(key, not_before=window[0], not_after=window[1])
    context = _context_with(server, tmp_path, certificate, key)
    reply = await send(server, "GET", "/v1/identity/self/describe", context=context)
    assert reply.json() == {
        "identity": server.admin.identity,
        "admin": True,
        "created_at": reply.json()["created_at"],
    }
    assert (await send(server, "PUT", "/v1/key/create/k", context=context)).status == 200


async def test_api_key_client_of_the_admin_works(server: RunningServer) -> None:
    """An API key becomes a self-signed Ed25519 certificate; its identity is the key's."""
    key = _admin_key(server)
    api_key = APIKey.from_private_key(key)
    async with Client(server.url, api_key=api_key, ca_file=server.ca_file) as client:
        await client.create_key("made-with-api-key")
        assert (await client.describe_key("made-with-api-key"))["created_by"] == api_key.identity
        assert (await client.describe_self())["admin"] is True
    assert api_key.identity == server.admin.identity


async def test_api_key_identity_matches_kms_go(start_server: StartServer) -> None:
    """Known answer from minio/kms-go kes/apikey_test.go: the identity of this API key."""
    api_key = APIKey.parse("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs")
    identity = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
    server = await start_server(policy=_allow_all_policy(identity))
    async with Client(server.url, api_key=api_key, ca_file=server.ca_file) as client:
        described = await client.describe_self()
        assert (described["identity"], described["policy"]) == (identity, "everything")
        await client.create_key("kat")


# --- tls.auth: on ----------------------------------------------------------------------------


async def _start_verifying_server(
    directory: Path, tls_ca: trustme.CA, client_ca: trustme.CA, admin: str
) -> RunningServer:
    write_server_tls(directory, tls_ca)
    client_ca.cert_pem.write_to_path(str(directory / "client-ca.crt"))
    config_file = directory / "config.yml"
    config_file.write_text(
        textwrap.dedent(
            f"""\
            version: v1
            address: 127.0.0.1:0
            admin:
              identity: {admin}
            tls:
              key: {directory}/server.key
              cert: {directory}/server.crt
              auth: on
              ca: {directory}/client-ca.crt
            keystore:
              fs:
                path: {directory}/keys
            log:
              audit: off
            """
        )
    )
    server = Server(load_config(config_file), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    someone = make_identity(directory, "self-signed")
    return RunningServer(
        server, directory, str(directory / "ca.crt"), someone, someone, someone, config_file
    )


async def test_tls_auth_on_accepts_ca_signed_and_refuses_self_signed(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    client_ca = trustme.CA()
    leaf = client_ca.issue_cert("client.example")
    pem = leaf.cert_chain_pems[0].bytes()
    admin = identity_of_certificate(x509.load_pem_x509_certificate(pem))
    server = await _start_verifying_server(tmp_path, tls_ca, client_ca, admin)
    try:
        cert_file, key_file = tmp_path / "signed.crt", tmp_path / "signed.key"
        cert_file.write_bytes(pem)
        leaf.private_key_pem.write_to_path(str(key_file))
        signed = client_context(server, cert_file=str(cert_file), key_file=str(key_file))
        reply = await send(server, "GET", "/v1/identity/self/describe", context=signed)
        assert (reply.json()["identity"], reply.json()["admin"]) == (admin, True)
        with pytest.raises(HANDSHAKE_FAILED):
            await send(server, "GET", "/version", who=server.admin)  # self-signed
        with pytest.raises(HANDSHAKE_FAILED):
            await send(server, "GET", "/version", who=None)
    finally:
        await server.aclose()
