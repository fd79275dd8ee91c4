"""The server TLS context: KES's client-certificate modes, proven with in-memory handshakes."""

from __future__ import annotations

import contextlib
import datetime
import ssl
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from aiokes import _openssl_verify
from aiokes.certificate import self_signed_certificate, write_certificate, write_private_key
from aiokes.errors import TLSError
from aiokes.identity import identity_of_certificate
from aiokes.tls import peer_identity, server_context


@pytest.fixture
def server_files(tmp_path: Path, tls_ca: trustme.CA) -> tuple[str, str]:
    issued = tls_ca.issue_cert("127.0.0.1", "localhost")
    issued.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    return str(tmp_path / "server.crt"), str(tmp_path / "server.key")


def _client(tmp_path: Path, certificate: x509.Certificate, key: object) -> ssl.SSLContext:
    write_certificate(tmp_path / "c.crt", certificate, force=True)
    write_private_key(tmp_path / "c.key", key, force=True)  # type: ignore[arg-type]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    return context


class _Link(NamedTuple):
    """Both ends of an in-memory TLS connection and the BIOs between them."""

    server: ssl.SSLObject
    client: ssl.SSLObject
    to_server: ssl.MemoryBIO
    from_server: ssl.MemoryBIO
    to_client: ssl.MemoryBIO
    from_client: ssl.MemoryBIO


def _link(server: ssl.SSLContext, client: ssl.SSLContext) -> _Link:
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    client_side = client.wrap_bio(c_in, c_out)
    for _ in range(8):
        for endpoint, source, sink in ((client_side, c_out, s_in), (server_side, s_out, c_in)):
            with contextlib.suppress(ssl.SSLWantReadError):
                endpoint.do_handshake()
            sink.write(source.read())
    return _Link(server_side, client_side, s_in, s_out, c_in, c_out)


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    return _link(server, client).server


def _expired(key: ed25519.Ed25519PrivateKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, None)
    )


def test_any_self_signed_even_expired_client_certificate_is_accepted(
    tmp_path: Path, server_files: tuple[str, str]
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = _expired(key)
    server = _handshake(server_context(*server_files), _client(tmp_path, certificate, key))
    assert peer_identity(server) == identity_of_certificate(certificate)


def test_missing_client_certificate_fails_the_handshake(server_files: tuple[str, str]) -> None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    context = server_context(*server_files)
    with pytest.raises(ssl.SSLError, match="PEER_DID_NOT_RETURN_A_CERTIFICATE"):
        _handshake(context, client)


def test_verify_mode_refuses_self_signed_and_accepts_ca_signed(
    tmp_path: Path, server_files: tuple[str, str], tls_ca: trustme.CA
) -> None:
    (tmp_path / "clients.pem").write_bytes(tls_ca.cert_pem.bytes())
    context = server_context(
        *server_files, verify_client_certs=True, ca_path=str(tmp_path / "clients.pem")
    )
    key = ed25519.Ed25519PrivateKey.generate()
    self_signed = self_signed_certificate(key, common_name="x", validity=datetime.timedelta(1))
    client = _client(tmp_path, self_signed, key)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        _handshake(context, client)
    issued = tls_ca.issue_cert("client@example.com")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "ca-signed.crt"))
    issued.private_key_pem.write_to_path(str(tmp_path / "ca-signed.key"))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.load_cert_chain(tmp_path / "ca-signed.crt", tmp_path / "ca-signed.key")
    assert peer_identity(_handshake(context, client)) is not None


def test_a_ca_certificate_is_not_an_identity(tmp_path: Path, server_files: tuple[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    server = _handshake(server_context(*server_files), _client(tmp_path, ca_certificate, key))
    assert peer_identity(server) is None  # KES ignores CA certificates: "certificate is required"


def test_server_certificate_without_san_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(key, common_name="no-san", validity=datetime.timedelta(1))
    write_certificate(tmp_path / "s.crt", certificate)
    write_private_key(tmp_path / "s.key", key)
    with pytest.raises(TLSError, match="does not contain any DNS or IP address as SAN"):
        server_context(str(tmp_path / "s.crt"), str(tmp_path / "s.key"))


def test_unreadable_server_key_names_the_files(tmp_path: Path) -> None:
    with pytest.raises(TLSError, match=r"missing\.crt"):
        server_context(str(tmp_path / "missing.crt"), str(tmp_path / "missing.key"))


def test_tls_below_1_2_is_refused(server_files: tuple[str, str]) -> None:
    assert server_context(*server_files).minimum_version == ssl.TLSVersion.TLSv1_2


def test_without_the_verify_callback_the_self_test_refuses_to_start(
    server_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a Python/OpenSSL upgrade that silently broke the ctypes hook would look like: the
    # context keeps verifying chains, and start-up must fail closed rather than refuse clients.
    monkeypatch.setattr(_openssl_verify, "_install_accept_chain", lambda context: None)
    with pytest.raises(TLSError, match="TLS self-test failed: a self-signed client certificate"):
        server_context(*server_files)


def test_a_context_whose_verify_mode_is_not_the_one_set_is_refused(
    server_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pointer sanity check: an SSL_CTX found at the wrong offset must not be written to.
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # verify mode CERT_NONE
    pointer_of_other = _openssl_verify._ssl_ctx_pointer(other)
    monkeypatch.setattr(_openssl_verify, "_ssl_ctx_pointer", lambda context: pointer_of_other)
    with pytest.raises(TLSError, match="cannot install the client-certificate policy"):
        server_context(*server_files)


def test_a_served_connection_reads_and_writes_through_openssl_directly(
    tmp_path: Path, server_files: tuple[str, str]
) -> None:
    """uvloop binds ``read``, ``write`` and ``pending`` once per connection; they must be the
    C methods (no stdlib forwarding call per request) and behave as the stdlib's."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(key, common_name="app", validity=datetime.timedelta(1))
    client = _client(tmp_path, certificate, key)
    link = _link(server_context(*server_files), client)
    server_side, client_side = link.server, link.client
    direct = vars(server_side)
    assert {name: type(direct[name]).__name__ for name in ("read", "write", "pending")} == {
        "read": "builtin_function_or_method",
        "write": "builtin_function_or_method",
        "pending": "builtin_function_or_method",
    }
    with pytest.raises(ssl.SSLWantReadError):  # nothing arrived: the stdlib's error
        server_side.read(1024)
    client_side.write(b"GET /version HTTP/1.1\r\n\r\n")
    link.to_server.write(link.from_client.read())
    buffer = bytearray(64)
    count: object = server_side.read(64, buffer)  # into a buffer: a count (typeshed: bytes)
    assert count == 25
    assert bytes(buffer[:25]) == b"GET /version HTTP/1.1\r\n\r\n"
    assert server_side.pending() == 0
    assert server_side.write(b"HTTP/1.1 200 OK\r\n\r\n") == 19
    link.to_client.write(link.from_server.read())
    assert client_side.read(64) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert peer_identity(server_side) == identity_of_certificate(certificate)
