"""Names, patterns, identities and API keys against KES's own tables and known answers."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from aiokes.certificate import api_key_certificate, self_signed_certificate
from aiokes.identity import (
    APIKey,
    identity_of_certificate,
    identity_of_public_key,
    valid_name,
    valid_pattern,
)

# minio/kes:auth_test.go@HEAD validNameTests / validPatternTests (data, not code).
VALID_NAMES = ["my-key", "abc123", "0", "123ABC321", "_-___---_", "_0", "0-Z", "my_key-0", "a" * 80]
INVALID_NAMES = [
    "",
    "my.key",
    "key/",
    "☰",
    "hel<lo",
    "\u0395macs",
    "a" * 81,
    "_",
    "-a",
    "a-",
    "a*",
    "*",
]
VALID_PATTERNS = [
    "my-key",
    "abc123",
    "0",
    "123ABC321",
    "_-___---_",
    "_0",
    "0-Z",
    "*",
    "my*",
    "_-*",
    "",
]
INVALID_PATTERNS = [
    "*-*",
    "my.key",
    "key/",
    "☰",
    "hel<lo",
    "\u0395macs",
    "a" * 81,
    "_",
    "-*",
    "a-",
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_kes_valid_names_are_accepted(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_kes_invalid_names_are_rejected(name: str) -> None:
    assert not valid_name(name)


@pytest.mark.parametrize("pattern", VALID_PATTERNS)
def test_kes_valid_patterns_are_accepted(pattern: str) -> None:
    assert valid_pattern(pattern)


@pytest.mark.parametrize("pattern", INVALID_PATTERNS)
def test_kes_invalid_patterns_are_rejected(pattern: str) -> None:
    assert not valid_pattern(pattern)


# minio/kes root.cert / play.min.io admin key, and minio/kms-go:kes/apikey_test.go.
@pytest.mark.parametrize(
    ("api_key", "identity"),
    [
        (
            "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",
            "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22",
        ),
        (
            "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
            "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6",
        ),
    ],
)
def test_api_key_identity_matches_kes(api_key: str, identity: str) -> None:
    key = APIKey.parse(api_key)
    assert key.identity == identity
    assert str(key) == api_key
    assert APIKey.parse(api_key.removeprefix("kes:v1:")).identity == identity


@pytest.mark.parametrize(
    "text",
    [
        "kes:v1:",
        "kes:v1:not-base64!",
        "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYD",  # too short
        "kes:v1:AT9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",  # key type 1 does not exist
    ],
)
def test_malformed_api_keys_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid api key"):
        APIKey.parse(text)


def test_api_key_repr_hides_the_seed() -> None:
    key = APIKey.generate()
    assert key.seed.hex() not in repr(key)


def test_api_key_certificate_has_kes_properties() -> None:
    key = APIKey.generate()
    certificate, private_key = api_key_certificate(key)
    assert identity_of_certificate(certificate) == key.identity
    assert certificate.subject.rfc4514_string() == f"CN={key.identity}"
    assert certificate.issuer == certificate.subject
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity == datetime.timedelta(days=90)
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(private_key, ed25519.Ed25519PrivateKey)


def test_identity_depends_only_on_the_public_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    day = datetime.timedelta(days=1)
    first = self_signed_certificate(key, common_name="a", validity=day)
    second = self_signed_certificate(key, common_name="b", ips=["127.0.0.1"], validity=day * 9)
    assert identity_of_certificate(first) == identity_of_certificate(second)
    assert identity_of_certificate(first.public_bytes(Encoding.DER)) == identity_of_public_key(
        key.public_key()
    )
    assert len(identity_of_public_key(key.public_key())) == 64
