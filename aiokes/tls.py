"""Server TLS: KES's client-certificate modes, the server certificate, peer identities.

KES's default mode requires a client certificate but verifies no chain (clients are identified
by the hash of their public key and authorised by policy); the stdlib cannot express that, so
:mod:`aiokes._openssl_verify` installs it, and proves at start-up that it works. ``tls.auth: on``
is ordinary CA verification.
"""

from __future__ import annotations

import ssl
import weakref
from pathlib import Path
from typing import Any

from cryptography import x509

from aiokes._openssl_verify import accept_any_client_certificate
from aiokes.errors import TLSError
from aiokes.identity import identity_of_certificate

__all__ = ["ServerContext", "load_server_certificate", "peer_identity", "server_context"]


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
    context = ServerContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    load_server_certificate(context, cert_file, key_file, password)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    if verify_client_certs:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if ca_path:
            _load_client_cas(context, ca_path)
    else:
        accept_any_client_certificate(context)
    return context


class ServerContext(ssl.SSLContext):
    """A server context whose connections read and write through OpenSSL's C methods.

    uvloop serves TLS through memory BIOs: per request it calls the connection's
    ``SSLObject.read``, ``write`` and twice ``pending``, each a Python method of the stdlib
    that only forwards to the same method of the C object (``SSLObject._sslobj``). Giving
    the connection those C methods as its own attributes (uvloop binds them once, at the
    handshake) spares the four Python calls; the calls, arguments and errors are the same.
    """

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        connection = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        direct = getattr(connection, "_sslobj", None)  # the stdlib's own name for it
        if direct is not None:
            attributes = vars(connection)
            for name in _FORWARDED_METHODS:
                attributes[name] = getattr(direct, name)
        return connection


_FORWARDED_METHODS = ("read", "write", "pending")


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
