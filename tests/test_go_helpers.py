"""aiokes._go: the Go-compatible helpers every part shares (one of each), and the CLI's
``--expiry`` parser built on the shared duration grammar."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokes._go.base64 import b64decode_std, b64encode_std
from aiokes._go.duration import DurationSyntaxError, duration_nanoseconds
from aiokes._go.time import format_go_time, parse_rfc3339
from aiokes.cli._identity_files import parse_expiry


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("1h30m", 5_400_000_000_000),
        ("1.5s", 1_500_000_000),
        ("10µs", 10_000),  # U+00B5
        ("10μs", 10_000),  # U+03BC
        ("1.9ns", 1),  # Go truncates fractions of a nanosecond
        ("3000000h", 3_000_000 * 3_600_000_000_000),  # no bound here: callers choose one
    ],
)
def test_duration_grammar(text: str, nanoseconds: int) -> None:
    assert duration_nanoseconds(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "missing_unit"),
    [("", False), ("30", True), ("1h30", True), ("-1h", False), (" 1h", False), ("1d", False)],
)
def test_duration_grammar_refusals_say_whether_a_unit_is_missing(
    text: str, missing_unit: bool
) -> None:
    with pytest.raises(DurationSyntaxError) as caught:
        duration_nanoseconds(text)
    assert caught.value.missing_unit is missing_unit


@pytest.mark.parametrize(
    ("text", "expiry"),
    [
        ("720h", datetime.timedelta(hours=720)),
        ("1h30m", datetime.timedelta(minutes=90)),
        ("1.5s", datetime.timedelta(seconds=1.5)),
    ],
)
def test_expiry_is_a_positive_go_duration(text: str, expiry: datetime.timedelta) -> None:
    assert parse_expiry(text) == expiry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "invalid duration 'soon' (examples: 720h, 8760h, 90m)"),
        ("0", "invalid duration '0' (examples: 720h, 8760h, 90m)"),
        ("-1h", "invalid duration '-1h' (examples: 720h, 8760h, 90m)"),
        ("0h", "invalid duration '0h': it must be positive"),
    ],
)
def test_expiry_refusals_keep_their_texts(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_expiry(text)
    assert str(caught.value) == message


@given(st.binary(max_size=64))
def test_base64_round_trips_in_go_standard_encoding(data: bytes) -> None:
    text = b64encode_std(data)
    assert not {"-", "_"} & set(text)  # the standard alphabet, not the URL-safe one
    assert len(text) % 4 == 0  # padded
    assert b64decode_std(text) == data


def test_go_time_marshals_microseconds_and_the_zero_time() -> None:
    moment = datetime.datetime(2024, 1, 12, 10, 39, 20, 886816, tzinfo=datetime.UTC)
    assert format_go_time(moment) == "2024-01-12T10:39:20.886816Z"
    assert format_go_time(moment.replace(microsecond=0)) == "2024-01-12T10:39:20Z"
    assert format_go_time(None) == "0001-01-01T00:00:00Z"
    assert parse_rfc3339(format_go_time(moment)) == int(moment.timestamp()) * 10**9 + 886816000
