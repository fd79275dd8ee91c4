"""Go's ``time.Time`` in JSON: strict RFC 3339 in, RFC 3339 with nanoseconds out.

Times are held as integer nanoseconds since the Unix epoch where Go's precision matters,
because a ``datetime`` cannot hold Go's nanoseconds. Go's parser is strict: upper-case
``T``/``Z``, a ``.`` fraction of any length (truncated to nanoseconds), a numeric offset, no
leap second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "NANOS_PER_SECOND",
    "UNIX_EPOCH",
    "format_go_time",
    "format_rfc3339",
    "parse_rfc3339",
]

NANOS_PER_SECOND = 1_000_000_000
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME_TEXT = "0001-01-01T00:00:00Z"  # how Go marshals an unset time.Time

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 time as Go's ``time.Time.UnmarshalJSON`` does; Unix nanoseconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("time is not RFC 3339")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]
    try:
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise ValueError("time is out of range") from None
    seconds = (when - UNIX_EPOCH) // timedelta(seconds=1)
    if sign is not None:
        seconds -= _offset_seconds(sign, int(offset_hours), int(offset_minutes))
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * NANOS_PER_SECOND + nanos


def format_rfc3339(unix_nanos: int) -> str:
    """Format like Go's ``time.Time.MarshalJSON`` for a UTC time (RFC 3339, nanoseconds)."""
    seconds, nanos = divmod(unix_nanos, NANOS_PER_SECOND)
    when = UNIX_EPOCH + timedelta(seconds=seconds)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
        f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}{fraction}Z"
    )


def format_go_time(moment: datetime | None) -> str:
    """A UTC ``datetime`` as Go's ``time.Time`` marshals it; ``None`` is Go's zero time."""
    if moment is None:
        return _GO_ZERO_TIME_TEXT
    return format_rfc3339((moment - UNIX_EPOCH) // timedelta(microseconds=1) * 1000)


def _offset_seconds(sign: str, hours: int, minutes: int) -> int:
    if hours > 23 or minutes > 59:
        raise ValueError("time zone offset is out of range")
    offset = (hours * 60 + minutes) * 60
    return -offset if sign == "-" else offset
