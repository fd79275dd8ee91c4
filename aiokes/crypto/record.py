"""Key records: the bytes a keystore holds for each master key (spec §5.7).

aiokes writes what KES has written since 2024-02: standard base64 of a proto3 ``KeyVersion``
with a mandatory HMAC key. It reads that and every JSON record older KES releases wrote:
``{"bytes"}`` (up to v0.18), then ``algorithm``/``created_at``/``created_by`` and later a
``"version":"v1"`` field. A record is JSON if it starts with ``{``; anything else is base64
protobuf. Records are never rewritten, so an old record keeps its old format for good.

Times: Go records carry nanoseconds; ``created_at`` keeps microseconds and
``created_at_nanos`` the three digits below them, so records and describe output stay exact.
``created_at is None`` stands for Go's zero time, the creation time of records that have none.
"""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiokes.crypto._protobuf as pb
from aiokes._go.base64 import b64decode_std
from aiokes._go.json import json_bytes, json_str, load_json_object
from aiokes._go.time import NANOS_PER_SECOND, UNIX_EPOCH, format_rfc3339, parse_rfc3339
from aiokes.crypto.cipher import Cipher, parse_cipher
from aiokes.crypto.secret_key import KEY_SIZE, SecretKey
from aiokes.errors import HMACNotSupported, InvalidKeyRecord

__all__ = ["KeyVersion", "encode_key_version", "generate_key_version", "parse_key_version"]

_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME_NANOS = (_GO_ZERO_TIME - UNIX_EPOCH) // timedelta(microseconds=1) * 1000
_NANOS_PER_MICRO = 1000
_SHA256 = 1  # HMACKey.Hash wire value
_CIPHERS = {int(cipher): cipher for cipher in Cipher}
_JSON_WHITESPACE = b" \t\r\n"

# Field numbers of internal/protobuf/crypto.proto (package miniohq.kms) and Timestamp.
_KEY_VERSION = {1: pb.Kind.MESSAGE, 2: pb.Kind.MESSAGE, 3: pb.Kind.MESSAGE, 4: pb.Kind.BYTES}
_SECRET_KEY = {1: pb.Kind.BYTES, 2: pb.Kind.VARINT}  # key, type
_HMAC_KEY = {1: pb.Kind.BYTES, 2: pb.Kind.VARINT}  # key, hash
_TIMESTAMP = {1: pb.Kind.VARINT, 2: pb.Kind.VARINT}  # seconds (int64), nanos (int32)


@dataclass(frozen=True, slots=True, eq=False)
class KeyVersion:
    """A master key as stored: encryption key, HMAC key, creation time and creator identity."""

    key: SecretKey
    hmac_key: bytes | None = field(repr=False)  # None in every record from before 2024-02
    created_at: datetime | None  # UTC, microseconds; None: unknown (Go's zero time)
    created_by: str = ""
    created_at_nanos: int = 0  # nanoseconds below created_at's microseconds, 0-999

    def __post_init__(self) -> None:
        if not isinstance(self.key, SecretKey):
            raise TypeError("key must be a SecretKey")
        if self.hmac_key is not None and (
            not isinstance(self.hmac_key, bytes) or len(self.hmac_key) != KEY_SIZE
        ):
            raise ValueError(f"HMAC key must be {KEY_SIZE} bytes")
        object.__setattr__(
            self, "created_at", _checked_time(self.created_at, self.created_at_nanos)
        )

    def hmac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the HMAC key; :class:`HMACNotSupported` if none."""
        if self.hmac_key is None:
            raise HMACNotSupported()
        return hmac.digest(self.hmac_key, message, "sha256")

    def created_at_rfc3339(self) -> str:
        """``created_at`` exactly as KES's describe API renders it (Go RFC 3339, nanoseconds)."""
        return format_rfc3339(self._created_at_unix_nanos())

    def _created_at_unix_nanos(self) -> int:
        if self.created_at is None:
            return _GO_ZERO_TIME_NANOS
        micros = (self.created_at - UNIX_EPOCH) // timedelta(microseconds=1)
        return micros * _NANOS_PER_MICRO + self.created_at_nanos

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyVersion):
            return NotImplemented
        return (
            self.key == other.key
            and _same_secret(self.hmac_key, other.hmac_key)
            and self._created_at_unix_nanos() == other._created_at_unix_nanos()
            and self.created_by == other.created_by
        )

    def __hash__(self) -> int:
        return hash((self.key, self.created_at, self.created_at_nanos, self.created_by))


def generate_key_version(
    created_by: str,
    *,
    cipher: Cipher = Cipher.AES256,
    key: bytes | None = None,
    now: datetime | None = None,
) -> KeyVersion:
    """A new key version: ``key`` (random unless given) plus a fresh random HMAC key."""
    secret = SecretKey(cipher, os.urandom(KEY_SIZE) if key is None else key)
    created_at = datetime.now(UTC) if now is None else now
    return KeyVersion(secret, os.urandom(KEY_SIZE), created_at, created_by)


def encode_key_version(version: KeyVersion) -> bytes:
    """The record KES has written since 2024-02: base64 (padded) of the protobuf KeyVersion."""
    if version.hmac_key is None:
        raise ValueError("a key version without an HMAC key cannot be stored in KES's format")
    seconds, nanos = divmod(version._created_at_unix_nanos(), NANOS_PER_SECOND)
    message = (
        pb.message_field(1, _encode_key(version.key.key, version.key.cipher))
        + pb.message_field(2, _encode_key(version.hmac_key, _SHA256))
        + pb.message_field(3, pb.varint_field(1, seconds) + pb.varint_field(2, nanos))
        + pb.len_field(4, version.created_by.encode())
    )
    return base64.b64encode(message)


def parse_key_version(record: bytes) -> KeyVersion:
    """Read a key record of any KES era; raise :class:`InvalidKeyRecord` if it is none."""
    try:
        if record.lstrip(_JSON_WHITESPACE)[:1] == b"{":
            return _parse_json_record(record)
        return _parse_protobuf_record(b64decode_std(record))
    except ValueError as exc:  # every message below is written here and names no key bytes
        raise InvalidKeyRecord(f"invalid key record: {exc}") from None


def _encode_key(key: bytes, key_type: int) -> bytes:
    return pb.len_field(1, key) + pb.varint_field(2, key_type)


def _parse_json_record(record: bytes) -> KeyVersion:
    fields = load_json_object(record)
    algorithm = json_str(fields, "algorithm")
    cipher = parse_cipher(algorithm) if algorithm else Cipher.AES256
    key = SecretKey(cipher, json_bytes(fields, "bytes"))
    created_at = fields.get("created_at")
    if created_at is not None and not isinstance(created_at, str):
        raise ValueError("JSON field 'created_at' is not a string")
    unix_nanos = _GO_ZERO_TIME_NANOS if created_at is None else parse_rfc3339(created_at)
    return _key_version(key, None, unix_nanos, json_str(fields, "created_by"))


def _parse_protobuf_record(raw: bytes) -> KeyVersion:
    fields = pb.decode_message(raw, _KEY_VERSION)
    key = _decode_secret_key(pb.field_bytes(fields, 1))
    hmac_key = _decode_hmac_key(pb.field_bytes(fields, 2))
    created_at = _decode_timestamp(pb.field_bytes(fields, 3))
    return _key_version(key, hmac_key, created_at, _decode_utf8(pb.field_bytes(fields, 4)))


def _decode_secret_key(raw: bytes) -> SecretKey:
    fields = pb.decode_message(raw, _SECRET_KEY)
    key = pb.field_bytes(fields, 1)
    if len(key) != KEY_SIZE:
        raise ValueError(f"secret key must be {KEY_SIZE} bytes, not {len(key)}")
    key_type = _uint32(pb.field_int(fields, 2))
    if key_type not in _CIPHERS:
        raise ValueError(f"unknown secret key type {key_type}")
    return SecretKey(_CIPHERS[key_type], key)


def _decode_hmac_key(raw: bytes) -> bytes:
    fields = pb.decode_message(raw, _HMAC_KEY)
    key = pb.field_bytes(fields, 1)
    if len(key) != KEY_SIZE:
        raise ValueError(f"HMAC key must be {KEY_SIZE} bytes, not {len(key)}")
    if _uint32(pb.field_int(fields, 2)) != _SHA256:
        raise ValueError("unknown HMAC key hash")
    return key


def _decode_timestamp(raw: bytes) -> int:
    # A missing Timestamp decodes as the Unix epoch, as Go's (*Timestamp)(nil).AsTime() does.
    fields = pb.decode_message(raw, _TIMESTAMP)
    seconds = _signed(pb.field_int(fields, 1), 64)
    nanos = _signed(_uint32(pb.field_int(fields, 2)), 32)
    return seconds * NANOS_PER_SECOND + nanos


def _decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ValueError("created_by is not UTF-8") from None


def _key_version(
    key: SecretKey, hmac_key: bytes | None, unix_nanos: int, created_by: str
) -> KeyVersion:
    if unix_nanos == _GO_ZERO_TIME_NANOS:
        return KeyVersion(key, hmac_key, None, created_by)
    micros, nanos = divmod(unix_nanos, _NANOS_PER_MICRO)
    try:
        created_at = UNIX_EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError("created_at is out of range") from None
    return KeyVersion(key, hmac_key, created_at, created_by, nanos)


def _checked_time(when: datetime | None, nanos: int) -> datetime | None:
    if not 0 <= nanos < _NANOS_PER_MICRO:
        raise ValueError("created_at_nanos must be within 0-999")
    if when is None:
        if nanos:
            raise ValueError("created_at_nanos needs a created_at")
        return None
    offset = when.utcoffset()
    if offset is None:
        raise ValueError("created_at must be timezone-aware")
    if offset or when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    # Go's zero time is how KES says "no creation time"; keep one spelling of it.
    return None if when == _GO_ZERO_TIME and not nanos else when


def _uint32(value: int) -> int:
    return value & 0xFFFFFFFF  # Go converts the decoded varint with uint32(v), truncating


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _same_secret(first: bytes | None, second: bytes | None) -> bool:
    if first is None or second is None:
        return first is second
    return hmac.compare_digest(first, second)
