"""Throw-away TLS material for a benchmark run: one CA, a server and a client certificate.

Every key is ECDSA P-256, the curve MinIO and ``kes identity new`` use, so the handshake cost
matches production. The CA signs both leaves: the baseline server verifies the client against
it (stdlib ``ssl`` cannot accept an arbitrary self-signed client certificate), while aiokes
accepts any client certificate as KES does.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aiokes.identity import identity_of_certificate

__all__ = ["BenchCertificates", "make_certificates"]

_VALIDITY = datetime.timedelta(days=2)
_LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class BenchCertificates:
    ca_file: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    client_identity: str  # the identity aiokes/KES derive from the client certificate


def make_certificates(directory: Path) -> BenchCertificates:
    """Write ``ca.crt``, ``server.{crt,key}`` and ``client.{crt,key}`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(ca_key, ca_key, _name("aiokes bench CA"), ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate(server_key, ca_key, _name("localhost"), issuer=ca_cert, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _certificate(client_key, ca_key, _name("bench-client"), issuer=ca_cert)
    files = {
        "ca.crt": _pem(ca_cert),
        "server.crt": _pem(server_cert),
        "server.key": _key_pem(server_key),
        "client.crt": _pem(client_cert),
        "client.key": _key_pem(client_key),
    }
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600 if name.endswith(".key") else 0o644)
    return BenchCertificates(
        ca_file=str(directory / "ca.crt"),
        server_cert=str(directory / "server.crt"),
        server_key=str(directory / "server.key"),
        client_cert=str(directory / "client.crt"),
        client_key=str(directory / "client.key"),
        client_identity=identity_of_certificate(client_cert),
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    issuer: x509.Certificate | None = None,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # Key identifiers and the CA's key usage: what Python 3.13's default VERIFY_X509_STRICT
    # (RFC 5280) demands of a chain, so clients on any Python accept these certificates.
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    if ca:
        builder = builder.add_extension(_CA_KEY_USAGE, critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(_LOOPBACK))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
