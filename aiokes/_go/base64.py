"""Base64 as KES writes and reads it: Go's ``base64.StdEncoding`` (standard alphabet, padded)."""

from __future__ import annotations

import binascii

__all__ = ["b64decode_std", "b64encode_std"]


def b64encode_std(data: bytes) -> str:
    """Encode like Go's ``base64.StdEncoding.EncodeToString`` (what ``[]byte`` JSON fields hold)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode_std(data: bytes | str) -> bytes:
    """Decode like Go's ``base64.StdEncoding``: ``\\r`` and ``\\n`` are skipped anywhere;
    raise ``ValueError`` on malformed input (without quoting it: it may be key material)."""
    try:
        raw = data.encode("ascii") if isinstance(data, str) else data
        return binascii.a2b_base64(raw.replace(b"\r", b"").replace(b"\n", b""), strict_mode=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError; neither message is safe to keep
        raise ValueError("invalid base64") from None
