"""The files behind ``aiokes identity``: a new Ed25519 key with its self-signed certificate,
and the identity (and API key) of an existing certificate or private-key file."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from aiokes._go.duration import DurationSyntaxError, duration_nanoseconds
from aiokes.certificate import self_signed_certificate, write_certificate, write_private_key
from aiokes.errors import AiokesError, IdentityFileError
from aiokes.identity import APIKey, identity_of_certificate, identity_of_public_key

__all__ = ["IdentityFiles", "Recognised", "create_identity_files", "parse_expiry", "recognise"]


@dataclass(frozen=True, slots=True)
class IdentityFiles:
    key_file: str
    cert_file: str
    api_key: APIKey = field(repr=False)

    @property
    def identity(self) -> str:
        return self.api_key.identity


@dataclass(frozen=True, slots=True)
class Recognised:
    """What ``identity of`` found: always an identity, an API key for Ed25519 private keys."""

    identity: str
    api_key: APIKey | None = field(default=None, repr=False)


def parse_expiry(text: str) -> datetime.timedelta:
    """``--expiry``: a Go duration such as ``720h``, ``8760h`` or ``1h30m``; it must be
    positive. No sign and no bare ``0``: neither can be positive."""
    try:
        nanoseconds = duration_nanoseconds(text)
    except DurationSyntaxError:
        raise ValueError(f"invalid duration '{text}' (examples: 720h, 8760h, 90m)") from None
    if nanoseconds <= 0:
        raise ValueError(f"invalid duration '{text}': it must be positive")
    return datetime.timedelta(microseconds=nanoseconds / 1000)


def create_identity_files(
    key_file: str,
    cert_file: str,
    *,
    subject: str | None,
    ips: list[str],
    dns_names: list[str],
    validity: datetime.timedelta,
    force: bool,
    password: bytes | None = None,
) -> IdentityFiles:
    """Write a new Ed25519 private key (0600) and its self-signed certificate (client and
    server auth). Existing files are replaced only with ``force``; on failure nothing new
    is left behind."""
    if Path(key_file).absolute() == Path(cert_file).absolute():
        raise IdentityFileError("the private key and the certificate must be different files")
    if not force:
        _refuse_existing(key_file, "private key")
        _refuse_existing(cert_file, "certificate")
    key = ed25519.Ed25519PrivateKey.generate()
    api_key = APIKey.from_private_key(key)
    certificate = self_signed_certificate(
        key,
        common_name=subject or api_key.identity,
        ips=ips,
        dns_names=dns_names,
        validity=validity,
    )
    _write(lambda: write_private_key(key_file, key, force=force, password=password), key_file)
    try:
        _write(lambda: write_certificate(cert_file, certificate, force=force), cert_file)
    except AiokesError:
        with contextlib.suppress(OSError):
            Path(key_file).unlink()
        raise
    return IdentityFiles(key_file, cert_file, api_key)


def recognise(argument: str) -> Recognised:
    """The identity of a ``kes:v1:`` API key, a PEM certificate file or a private-key file."""
    if argument.startswith("kes:v1:"):
        try:
            api_key = APIKey.parse(argument)
        except ValueError as exc:
            raise IdentityFileError(str(exc)) from None
        return Recognised(api_key.identity)  # the caller has the key already
    try:
        data = Path(argument).read_bytes()
    except OSError as exc:
        raise IdentityFileError(f"cannot read '{argument}': {exc.strerror or exc}") from None
    return _recognise_pem(argument, data)


def _recognise_pem(name: str, data: bytes) -> Recognised:
    with contextlib.suppress(ValueError):
        return Recognised(identity_of_certificate(x509.load_pem_x509_certificates(data)[0]))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise IdentityFileError(f"the private key in '{name}' is encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise IdentityFileError(
            f"'{name}' contains no valid PEM certificate or private key"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        api_key = APIKey.from_private_key(key)
        return Recognised(api_key.identity, api_key)
    return Recognised(identity_of_public_key(key.public_key()))


def _refuse_existing(path: str, what: str) -> None:
    if Path(path).exists():
        raise IdentityFileError(f"{what} '{path}' already exists. Use --force to overwrite it")


def _write(write: Callable[[], None], path: str) -> None:
    try:
        write()
    except FileExistsError:
        raise IdentityFileError(f"'{path}' already exists. Use --force to overwrite it") from None
    except OSError as exc:
        raise IdentityFileError(f"cannot write '{path}': {exc.strerror or exc}") from None
