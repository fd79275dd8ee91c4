"""KES's "require any client certificate" mode, installed on a stdlib context through ctypes.

KES's default mode requires a client certificate but verifies no chain: clients are identified
by the hash of their public key and authorised by policy, and API-key clients present
self-signed Ed25519 certificates. The stdlib ``ssl`` module cannot say "require any
certificate": CERT_REQUIRED always verifies against a trust store. So we install an OpenSSL
certificate-verify callback that accepts every chain on the context's ``SSL_CTX``. The client
must still prove possession of its private key in the handshake (CertificateVerify) — only the
chain check is replaced.

This is the one place aiokes reaches into CPython and OpenSSL internals (the layout of
``PySSLContext``, the ``_ssl`` extension's symbols). A Python or OpenSSL upgrade that breaks it
breaks it here, and :func:`accept_any_client_certificate` notices at once: it proves with a real
in-memory handshake that the callback works, and refuses otherwise (fail closed).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ssl
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from aiokes.certificate import self_signed_certificate, write_certificate, write_private_key
from aiokes.errors import TLSError
from aiokes.identity import identity_of_certificate

__all__ = ["accept_any_client_certificate"]

_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _accept_chain(_store_ctx: int | None, _arg: int | None) -> int:
    return 1  # the chain is "verified"; the identity check happens per request, by policy


# Module-level so the C callback object lives as long as any context that uses it.
_ACCEPT_CHAIN = _VerifyCallback(_accept_chain)


def accept_any_client_certificate(context: ssl.SSLContext) -> None:
    """Make ``context`` (a server context, ``verify_mode`` already set) accept any client
    certificate chain, then prove it with a handshake; raise :class:`TLSError` if either fails."""
    _install_accept_chain(context)
    _prove_any_client_certificate_is_accepted(context)


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


def _install_accept_chain(context: ssl.SSLContext) -> None:
    lib = _libssl()
    pointer = _ssl_ctx_pointer(context)
    # Sanity check that the pointer is the SSL_CTX: its verify mode must be what we just set.
    expected = 0x01 | (0x02 if context.verify_mode == ssl.CERT_REQUIRED else 0)
    if lib.SSL_CTX_get_verify_mode(pointer) != expected:
        raise TLSError("cannot install the client-certificate policy on this Python/OpenSSL")
    lib.SSL_CTX_set_cert_verify_callback(pointer, _ACCEPT_CHAIN, None)


def _prove_any_client_certificate_is_accepted(context: ssl.SSLContext) -> None:
    """Handshake in memory with a self-signed Ed25519 client certificate (an API-key client)."""
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
    with tempfile.TemporaryDirectory(prefix="aiokes-tls-") as directory:
        cert_path, key_path = str(Path(directory, "cert.pem")), str(Path(directory, "key.pem"))
        write_certificate(cert_path, certificate)
        write_private_key(key_path, key)
        yield cert_path, key_path
