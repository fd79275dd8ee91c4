"""Self-signed certificates as ``kes identity new``, ``kes server --dev`` and API-key clients
make them."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aiokes.identity import APIKey

__all__ = [
    "api_key_certificate",
    "dev_server_certificate",
    "private_key_pem",
    "self_signed_certificate",
    "write_certificate",
    "write_private_key",
]

API_KEY_CERT_VALIDITY = datetime.timedelta(days=90)


def self_signed_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    common_name: str,
    ips: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    validity: datetime.timedelta,
    server_auth: bool = True,
) -> x509.Certificate:
    """A leaf certificate signed by its own key: never a CA, usable for client auth."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server_auth:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_digital_signature_only(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    alt_names = _subject_alt_names(ips, dns_names)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def api_key_certificate(api_key: APIKey) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    """The client certificate a KES client presents for an API key (spec §4.7)."""
    key = api_key.private_key()
    certificate = self_signed_certificate(
        key, common_name=api_key.identity, validity=API_KEY_CERT_VALIDITY, server_auth=False
    )
    return certificate, key


def dev_server_certificate(
    ips: Sequence[str], dns_names: Sequence[str] = ("localhost",)
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """``kes server --dev``: ECDSA P-256, CN localhost, the given SANs, 90 days."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(
        key, common_name="localhost", ips=ips, dns_names=dns_names, validity=API_KEY_CERT_VALIDITY
    )
    return certificate, key


def private_key_pem(key: CertificateIssuerPrivateKeyTypes, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password:
        encryption = serialization.BestAvailableEncryption(password)
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, encryption)


def write_private_key(
    path: str | os.PathLike[str],
    key: CertificateIssuerPrivateKeyTypes,
    *,
    force: bool = False,
    password: bytes | None = None,
) -> None:
    """Write a PKCS#8 PEM private key readable by its owner only (0600), never replacing a file
    unless ``force`` is given."""
    _write_file(Path(path), private_key_pem(key, password), mode=0o600, force=force)


def write_certificate(
    path: str | os.PathLike[str], certificate: x509.Certificate, *, force: bool = False
) -> None:
    _write_file(
        Path(path), certificate.public_bytes(serialization.Encoding.PEM), mode=0o644, force=force
    )


def _write_file(path: Path, data: bytes, *, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # an existing file replaced with --force keeps no looser mode
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _subject_alt_names(ips: Sequence[str], dns_names: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return names


def _digital_signature_only() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
