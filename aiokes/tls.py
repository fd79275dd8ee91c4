"""Server TLS: KES's client-certificate modes, peer identities, and the start-up self-test.

KES's default mode requires a client certificate but verifies no chain: clients are identified
by the hash of their public key and authorised by policy, and API-key clients present
self-signed Ed25519 certificates. The stdlib ``ssl`` module cannot say "require any
certificate": CERT_REQUIRED always verifies against a trust store. We therefore install an
OpenSSL certificate-verify callback that accepts every chain on the context's ``SSL_CTX``
(reached through ctypes). The client must still prove possession of its private key in the
handshake (CertificateVerify) — only the chain check is replaced. Because this reaches into
CPython internals, :func:`server_context` proves with a real handshake that it works and refuses
to start otherwise (fail closed).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ssl
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from aiokes.errors import TLSError
from aiokes.identity import identity_of_certificate

__all__ = ["load_server_certificate", "peer_identity", "server_context"]


def server_context(
    cert_file: str,
    key_file: str,
    *,
    password: str = "",
    verify_client_certs: bool = False,
    ca_path: str = "",
    require_client_cert: bool = True,
) -> ssl.SSLContext:
    """Build the server context for one of KES's modes.

    ``verify_client_certs`` is ``tls.auth: on``. ``require_client_cert`` is False when an API
    has ``skip_auth`` (KES then only *requests* a certificate and answers 400 on routes that
    need one).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    load_server_certificate(context, cert_file, key_file, password)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    if verify_client_certs:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if ca_path:
            _load_client_cas(context, ca_path)
    else:
        _accept_any_client_certificate(context)
        _prove_any_client_certificate_is_accepted(context)
    return context


def load_server_certificate(
    context: ssl.SSLContext, cert_file: str, key_file: str, password: str = ""
) -> None:
    """Load the server's certificate and key into ``context`` after checking them on a scratch
    context, so that a broken or mismatched pair never replaces a working one (a failed
    ``load_cert_chain`` can leave a context with the new certificate and the old key)."""
    for target in (ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), context):
        try:
            target.load_cert_chain(cert_file, key_file, password=password or None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(
                f"failed to load TLS certificate '{cert_file}' / private key '{key_file}': {exc}"
            ) from None
        if target is not context:
            _check_san(cert_file)


def _check_san(cert_file: str) -> None:
    try:
        leaf = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (OSError, ValueError) as exc:
        raise TLSError(f"failed to read TLS certificate '{cert_file}': {exc}") from None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if not san or not (
        san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress)
    ):
        raise TLSError(
            "invalid TLS certificate: certificate does not contain any DNS or IP address as SAN"
        )


def _load_client_cas(context: ssl.SSLContext, ca_path: str) -> None:
    path = Path(ca_path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        try:
            context.load_verify_locations(cafile=str(file))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"failed to load CA certificates from '{file}': {exc}") from None


# --- "require any client certificate" -------------------------------------------------------

_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _accept_chain(_store_ctx: int | None, _arg: int | None) -> int:
    return 1  # the chain is "verified"; the identity check happens per request, by policy


# Module-level so the C callback object lives as long as any context that uses it.
_ACCEPT_CHAIN = _VerifyCallback(_accept_chain)


def _libssl() -> ctypes.CDLL:
    import _ssl

    # Symbols looked up through _ssl's own handle resolve in the libssl it is linked against,
    # so we configure the very SSL_CTX the stdlib created.
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_CTX_set_cert_verify_callback.argtypes = [
        ctypes.c_void_p,
        _VerifyCallback,
        ctypes.c_void_p,
    ]
    lib.SSL_CTX_set_cert_verify_callback.restype = None
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    return lib


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    # CPython's PySSLContext starts with PyObject_HEAD followed by the SSL_CTX pointer.
    offset = sys.getsizeof(object())
    pointer = ctypes.c_void_p.from_address(id(context) + offset).value
    if not pointer:
        raise TLSError("cannot locate the OpenSSL context of the TLS configuration")
    return pointer


def _accept_any_client_certificate(context: ssl.SSLContext) -> None:
    lib = _libssl()
    pointer = _ssl_ctx_pointer(context)
    # Sanity check that the pointer is the SSL_CTX: its verify mode must be what we just set.
    expected = 0x01 | (0x02 if context.verify_mode == ssl.CERT_REQUIRED else 0)
    if lib.SSL_CTX_get_verify_mode(pointer) != expected:
        raise TLSError("cannot install the client-certificate policy on this Python/OpenSSL")
    lib.SSL_CTX_set_cert_verify_callback(pointer, _ACCEPT_CHAIN, None)


def _prove_any_client_certificate_is_accepted(context: ssl.SSLContext) -> None:
    """Handshake in memory with a self-signed Ed25519 client certificate (an API-key client)."""
    from aiokes.certificate import self_signed_certificate

    key = ed25519.Ed25519PrivateKey.generate()
    certificate = self_signed_certificate(
        key, common_name="aiokes-self-test", validity=datetime.timedelta(minutes=1)
    )
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with _temporary_pem_pair(certificate, key) as (cert_path, key_path):
        client.load_cert_chain(cert_path, key_path)
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(server_in, server_out, server_side=True)
    peer = client.wrap_bio(client_in, client_out)
    try:
        for _ in range(8):
            _step(peer)
            server_in.write(client_out.read())
            _step(server)
            client_in.write(server_out.read())
        der = server.getpeercert(binary_form=True)
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS self-test failed: a self-signed client certificate was refused: {exc}"
        ) from exc
    if not der or identity_of_certificate(der) != identity_of_certificate(certificate):
        raise TLSError("TLS self-test failed: the client certificate was not seen by the server")


def _step(endpoint: ssl.SSLObject) -> None:
    with contextlib.suppress(ssl.SSLWantReadError):
        endpoint.do_handshake()


@contextlib.contextmanager
def _temporary_pem_pair(
    certificate: x509.Certificate, key: ed25519.Ed25519PrivateKey
) -> Iterator[tuple[str, str]]:
    """load_cert_chain only reads files: write the throw-away pair to a private temp dir."""
    from aiokes.certificate import write_certificate, write_private_key

    with tempfile.TemporaryDirectory(prefix="aiokes-tls-") as directory:
        cert_path, key_path = str(Path(directory, "cert.pem")), str(Path(directory, "key.pem"))
        write_certificate(cert_path, certificate)
        write_private_key(key_path, key)
        yield cert_path, key_path


# --- peer identity ------------------------------------------------------------------------


# One entry per live TLS connection: hashing the certificate once per connection, not per request.
_identities: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def peer_identity(ssl_object: Any) -> str | None:
    """The identity of a connection's client certificate, or ``None`` when there is no usable
    one (none sent, or only a CA certificate, which KES ignores)."""
    if ssl_object is None:
        return None
    try:
        return _identities[ssl_object]
    except KeyError:
        identity = _identity_of_peer(ssl_object)
        _identities[ssl_object] = identity
        return identity


def _identity_of_peer(ssl_object: Any) -> str | None:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    certificate = x509.load_der_x509_certificate(der)
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return None
    except x509.ExtensionNotFound:
        pass
    return identity_of_certificate(certificate)
