"""Just enough of the protobuf wire format for KES's key records.

Encoding is plain proto3 as Go's ``protobuf-go`` writes it: fields in number order, scalar
fields with their default value left out, embedded messages always written once set.

Decoding follows ``protobuf-go``'s rules too, because a record Go accepts must load here: unknown
fields are skipped, so is a known field that arrives with an unexpected wire type, the last
occurrence of a scalar wins, and repeated occurrences of an embedded message merge -- which,
for the flat messages KES uses, is the same as decoding their concatenated bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import Enum

__all__ = [
    "Kind",
    "decode_message",
    "field_bytes",
    "field_int",
    "len_field",
    "message_field",
    "varint_field",
]

_U64 = (1 << 64) - 1
_MAX_VARINT_BYTES = 10
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_FIXED_SIZES = {_I64: 8, _I32: 4}

Fields = dict[int, int | bytes]


class Kind(Enum):
    """How a known field is decoded."""

    VARINT = "varint"  # last occurrence wins
    BYTES = "bytes"  # bytes or string; last occurrence wins
    MESSAGE = "message"  # embedded message; occurrences merge

    @property
    def wire_type(self) -> int:
        return _VARINT if self is Kind.VARINT else _LEN


def varint_field(number: int, value: int) -> bytes:
    """A varint field, omitted when zero; negative values are written as 64-bit two's complement."""
    return _tag(number, _VARINT) + _varint(value) if value else b""


def len_field(number: int, data: bytes) -> bytes:
    """A bytes or string field, omitted when empty."""
    return message_field(number, data) if data else b""


def message_field(number: int, data: bytes) -> bytes:
    """An embedded message field, written even when the message is empty."""
    return _tag(number, _LEN) + _varint(len(data)) + data


def decode_message(data: bytes, schema: Mapping[int, Kind]) -> Fields:
    """Decode the known fields of one message; raise ``ValueError`` if ``data`` is malformed."""
    fields: Fields = {}
    for number, wire_type, value in _scan(data):
        kind = schema.get(number)
        if kind is None or kind.wire_type != wire_type:
            continue
        if kind is Kind.MESSAGE and isinstance(value, bytes):
            value = field_bytes(fields, number) + value
        fields[number] = value
    return fields


def field_bytes(fields: Fields, number: int) -> bytes:
    """A ``BYTES`` or ``MESSAGE`` field's value; ``b""`` when absent."""
    value = fields.get(number, b"")
    assert isinstance(value, bytes)
    return value


def field_int(fields: Fields, number: int) -> int:
    """A ``VARINT`` field's raw unsigned 64-bit value; 0 when absent."""
    value = fields.get(number, 0)
    assert isinstance(value, int)
    return value


def _scan(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("protobuf field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, position = _read_varint(data, position)
        elif wire_type == _LEN:
            size, position = _read_varint(data, position)
            value, position = _read_exact(data, position, size)
        elif wire_type in _FIXED_SIZES:
            value, position = _read_exact(data, position, _FIXED_SIZES[wire_type])
        else:  # groups (3, 4) are proto2-only; 6 and 7 do not exist
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, wire_type, value


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    for index in range(_MAX_VARINT_BYTES):
        if position + index >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[position + index]
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if value > _U64:
                raise ValueError("protobuf varint overflows 64 bits")
            return value, position + index + 1
    raise ValueError("protobuf varint longer than 10 bytes")


def _read_exact(data: bytes, position: int, size: int) -> tuple[bytes, int]:
    end = position + size
    if end > len(data):
        raise ValueError("truncated protobuf field")
    return data[position:end], end


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    value &= _U64
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
