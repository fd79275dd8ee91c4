"""The client side of KES's mutual TLS: trust for the server, a certificate for the client.

A client authenticates either with a certificate and private-key file pair or with a
``kes:v1:`` API key, which becomes a throw-away self-signed Ed25519 certificate (spec §4.7).
The stdlib ``ssl`` module only loads certificates from files, so the API-key certificate and
its private key are handed to OpenSSL through an anonymous in-memory file (``memfd``) where the
platform has one, and otherwise through a private temporary directory deleted at once.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from aiokes.certificate import api_key_certificate, private_key_pem
from aiokes.errors import ClientSetupError
from aiokes.identity import APIKey

__all__ = ["KeyPassword", "client_ssl_context"]

KeyPassword = str | bytes | Callable[[], str | bytes]


def client_ssl_context(
    *,
    cert_file: str | None = None,
    key_file: str | None = None,
    api_key: APIKey | None = None,
    ca_file: str | None = None,
    insecure: bool = False,
    key_password: KeyPassword | None = None,
) -> ssl.SSLContext:
    """A TLS ≥ 1.2 client context that presents the given client identity, if any.

    ``insecure`` skips the verification of the server's certificate (``kes -k``); ``ca_file``
    adds a CA to the system trust store. Unusable files raise :class:`ClientSetupError`.
    """
    _check_credentials(cert_file, key_file, api_key)
    context = _server_trust(ca_file, insecure)
    if api_key is not None:
        _load_api_key(context, api_key)
    elif cert_file is not None and key_file is not None:
        _load_key_pair(context, cert_file, key_file, key_password)
    return context


def _check_credentials(cert_file: str | None, key_file: str | None, api_key: APIKey | None) -> None:
    if api_key is not None and (cert_file or key_file):
        raise ClientSetupError(
            "an API key and a client certificate cannot be used at the same time"
        )
    if bool(cert_file) != bool(key_file):
        missing = "private key" if cert_file else "certificate"
        raise ClientSetupError(
            f"a client certificate needs its private key: no {missing} file given"
        )


def _server_trust(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if ca_file:
        _trust_ca(context, Path(ca_file))
    return context


def _trust_ca(context: ssl.SSLContext, path: Path) -> None:
    """Trust the CA certificates in a PEM file, or in every regular file of a directory."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        try:
            context.load_verify_locations(cafile=file)
        except (OSError, ssl.SSLError) as exc:
            raise ClientSetupError(f"cannot load CA certificate '{file}': {_reason(exc)}") from None


def _load_key_pair(
    context: ssl.SSLContext, cert_file: str, key_file: str, password: KeyPassword | None
) -> None:
    for path in (cert_file, key_file):
        if not Path(path).is_file():  # OpenSSL's own error would not name the file
            raise ClientSetupError(f"cannot read '{path}': no such file")
    try:
        context.load_cert_chain(cert_file, key_file, password=password)
    except (OSError, ssl.SSLError) as exc:
        # Never echo key material: OpenSSL's reason names the problem, not the bytes.
        raise ClientSetupError(
            f"cannot load client certificate '{cert_file}' with private key '{key_file}': "
            f"{_reason(exc)}"
        ) from None


def _load_api_key(context: ssl.SSLContext, api_key: APIKey) -> None:
    certificate, key = api_key_certificate(api_key)
    pem = private_key_pem(key) + certificate.public_bytes(serialization.Encoding.PEM)
    with _pem_path(pem) as path:
        context.load_cert_chain(path)


@contextlib.contextmanager
def _pem_path(pem: bytes) -> Iterator[str]:
    """A path OpenSSL can read ``pem`` from, valid inside the ``with`` block only."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and Path("/proc/self/fd").is_dir():
        fd = memfd_create("aiokes-client-identity", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="aiokes-") as directory:  # created 0700
        path = Path(directory) / "identity.pem"
        path.touch(mode=0o600)
        path.write_bytes(pem)
        yield str(path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
