"""Go's ``time.Duration`` as text: ``time.ParseDuration``'s syntax in, ``Duration.String`` out.

One grammar (:func:`duration_nanoseconds`) serves every duration aiokes reads: the config
file's settings (:func:`parse_duration`) and the CLI's flags, which word their own errors.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["DurationSyntaxError", "duration_nanoseconds", "format_duration", "parse_duration"]

# Go's time.ParseDuration units, in nanoseconds ("µ" is U+00B5, "μ" is U+03BC; Go takes both).
_UNIT_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER = r"\d+\.?\d*|\.\d+"
_COMPONENT = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
# A Go time.Duration is an int64 of nanoseconds (~292 years).
_MAX_DURATION_NANOSECONDS = (1 << 63) - 1
_NANOSECONDS_PER_SECOND = Decimal(1_000_000_000)


class DurationSyntaxError(ValueError):
    """The text is not a sequence of number-and-unit components (``1h30m``, ``1.5s``)."""

    def __init__(self, *, missing_unit: bool) -> None:
        self.missing_unit = missing_unit  # the rest was a bare number: "30" instead of "30s"
        super().__init__("missing unit" if missing_unit else "not a Go duration")


def duration_nanoseconds(body: str) -> int:
    """The nanoseconds of an unsigned Go duration such as ``5m0s``, ``1.5h`` or ``300ms``.

    Fractions of a nanosecond are truncated, as Go does. There is no sign, no surrounding
    space, no bare ``0`` and no upper bound here: the callers decide those.
    """
    if not body:
        raise DurationSyntaxError(missing_unit=False)
    total = Decimal(0)
    position = 0
    while position < len(body):
        match = _COMPONENT.match(body, position)
        if match is None:
            missing_unit = re.fullmatch(_NUMBER, body[position:]) is not None
            raise DurationSyntaxError(missing_unit=missing_unit)
        number, unit = match.groups()
        total += Decimal(number) * _UNIT_NANOSECONDS[unit]
        position = match.end()
    return int(total)


def parse_duration(text: str) -> float:
    """Parse a Go duration (``"5m0s"``, ``"1.5h"``, ``"300ms"``, ``"0"``) into seconds, with
    messages for the config file's operator.

    Negative durations are rejected: no setting of the config file has a use for them.
    """
    body = text.strip()
    sign = ""
    if body[:1] in ("+", "-"):
        sign, body = body[0], body[1:]
    if body == "0":
        return 0.0
    try:
        nanoseconds = duration_nanoseconds(body)
    except DurationSyntaxError as exc:
        raise ValueError(_syntax_problem(text, body, exc)) from None
    if sign == "-" and nanoseconds:
        raise ValueError(f"invalid duration '{text}': must not be negative")
    if nanoseconds > _MAX_DURATION_NANOSECONDS:
        raise ValueError(f"invalid duration '{text}': too large")
    return float(nanoseconds / _NANOSECONDS_PER_SECOND)


def _syntax_problem(text: str, body: str, error: DurationSyntaxError) -> str:
    if not body:
        return f"invalid duration '{text}'"
    if error.missing_unit:
        return f"invalid duration '{text}': missing unit (one of h, m, s, ms, us, ns)"
    return f"invalid duration '{text}' (Go syntax, e.g. 30s, 5m0s, 1h30m)"


def format_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String``: ``0s``, ``850ns``, ``1.5µs``, ``12ms``, ``1m30.5s``."""
    if nanoseconds < 0:
        return "-" + format_duration(-nanoseconds)
    if nanoseconds == 0:
        return "0s"
    for unit, suffix in ((1, "ns"), (1_000, "µs"), (1_000_000, "ms")):
        if nanoseconds < unit * 1000:
            return _decimal(nanoseconds, unit) + suffix
    minutes, rest = divmod(nanoseconds, 60_000_000_000)
    hours, minutes = divmod(minutes, 60)
    seconds = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def _decimal(value: int, unit: int) -> str:
    """``value / unit`` exactly, without trailing zeros: (1500, 1000) → ``1.5``."""
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
