"""``aiokes log``: following the audit and error streams of a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
from typing import Any

import pytest

from aiokes._go.duration import format_duration
from aiokes.cli.log import audit_line
from aiokes.errors import APIError
from aiokes.log import LogStream
from tests.cli.conftest import ainvoke, client_env
from tests.conftest import RunningServer


async def _until_subscribed(stream: LogStream, command: asyncio.Future[Any]) -> None:
    """Wait until the command's subscription reached the server, or the command ended.

    Polled: a LogStream announces nothing, and the command runs in another thread or process
    whose progress the test cannot await directly. No clock bounds the wait — how long a
    command takes to start says nothing on a loaded machine (a fixed 10 s made the Ctrl-C
    test flaky, issue 12) — the command's own end does: one that ended is reported.
    """
    while not stream.active:
        if command.done():
            pytest.fail(f"the command ended before subscribing: {command.result()!r}")
        await asyncio.sleep(0.005)


async def test_audit_log_prints_one_line_per_request(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    command = asyncio.create_task(ainvoke(["log", "--count", "2"], admin_env))
    await _until_subscribed(server.server.services.audit_stream, command)
    await server.client().create_key("my-key-1")
    with pytest.raises(APIError):
        await server.client().describe_key("missing")
    result = await command

    assert result.exit_code == 0, result.output
    header, created, missing = result.stdout.splitlines()
    assert header.split() == ["Time", "Status", "Identity", "IP", "API", "Latency"]
    short = server.admin.identity[:12] + "…"
    assert created.split()[1:6] == ["200", short, "127.0.0.1", "POST", "/v1/key/create/my-key-1"]
    assert missing.split()[1:6] == ["404", short, "127.0.0.1", "GET", "/v1/key/describe/missing"]
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", created.split()[0])
    assert re.fullmatch(r"[\d.]+(ns|µs|ms|s)", created.split()[-1])


async def test_audit_log_json_prints_the_events_as_streamed(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    command = asyncio.create_task(ainvoke(["log", "--audit", "--json", "--count", "1"], admin_env))
    await _until_subscribed(server.server.services.audit_stream, command)
    await server.client().create_key("my-key-1")
    result = await command

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    event = json.loads(line)
    assert event["request"] == {
        "path": "/v1/key/create/my-key-1",
        "method": "POST",  # kms-go and our client POST to PUT routes
        "ip": "127.0.0.1",
        "identity": server.admin.identity,
    }
    assert event["response"]["code"] == 200


async def test_error_log_prints_the_messages(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    command = asyncio.create_task(ainvoke(["log", "--error", "--count", "1"], admin_env))
    await _until_subscribed(server.server.services.error_stream, command)
    shutil.rmtree(server.keystore_dir)  # the next create fails in the keystore: an error event
    with pytest.raises(APIError):
        await server.client().create_key("lost-key")
    result = await command

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert "failed to create key" in line
    assert "lost-key" in line


async def test_log_ends_when_the_server_stops(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    command = asyncio.create_task(ainvoke(["log", "--json"], admin_env))
    await _until_subscribed(server.server.services.audit_stream, command)
    await server.server.stop()
    result = await command
    assert (result.exit_code, result.stdout) == (0, "")


async def test_ctrl_c_exits_with_1_as_kes_log(server: RunningServer) -> None:
    """kes log exits 1 on Ctrl-C (context.Canceled, minio/kes cmd/kes/log.go), quietly."""
    env = {**os.environ, **client_env(server)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiokes", "log", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        # A test run started in the background (`.ci/run &`) inherits SIGINT ignored, and so
        # would the command: give it the default disposition, as a terminal's Ctrl-C finds it.
        preexec_fn=_default_sigint,
    )  # fmt: skip
    exited = asyncio.ensure_future(process.wait())
    try:
        await _until_subscribed(server.server.services.audit_stream, exited)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):  # a command that ignores Ctrl-C fails, not hangs
            stdout, stderr = await process.communicate()  # ends: SIGINT cancels the stream
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await exited
    assert process.returncode == 1, stderr
    assert stdout.decode().startswith("Time")
    assert stderr == b""  # no traceback, no "Aborted!"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_audit_and_error_together_is_a_usage_error(admin_env: dict[str, str]) -> None:
    result = await ainvoke(["log", "--audit", "--error"], admin_env)
    assert result.exit_code == 1  # kes: cli.Fatal
    assert "cannot display audit and error logs at the same time" in result.output


async def test_a_caller_without_the_log_permission_is_refused(server: RunningServer) -> None:
    result = await ainvoke(["log"], client_env(server, server.app))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: not authorized: insufficient permissions"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"time": "2024-01-12T10:39:20.886816Z",
             "request": {"ip": "10.0.0.5", "path": "/v1/key/generate/k", "method": "PUT",
                         "identity": "ab" * 32},
             "response": {"code": 200, "time": 1_234_567}},
            ["10:39:20", "200", "abababababab…", "10.0.0.5", "PUT", "/v1/key/generate/k", "1.2ms"],
        ),
        (  # KES's events have no method; a request without a certificate has no identity
            {"time": "2024-01-12T10:39:20Z", "request": {"path": "/v1/ready"},
             "response": {"code": 200, "time": 0}},
            ["10:39:20", "200", "-", "<unknown>", "/v1/ready", "0s"],
        ),
        ({}, ["-", "-", "-", "<unknown>", "-", "-"]),
    ],
)  # fmt: skip
def test_audit_line(event: dict[str, object], expected: list[str]) -> None:
    assert audit_line(event).split() == expected


@pytest.mark.parametrize(
    ("nanoseconds", "expected"),
    [
        (0, "0s"),
        (850, "850ns"),
        (1_500, "1.5µs"),
        (12_000_000, "12ms"),
        (1_500_000_000, "1.5s"),
        (90_500_000_000, "1m30.5s"),
        (3_600_000_000_000, "1h0m0s"),
    ],
)
def test_format_duration_as_go(nanoseconds: int, expected: str) -> None:
    assert format_duration(nanoseconds) == expected


def test_latency_is_rounded_for_reading() -> None:
    def line(nanoseconds: int) -> str:
        return audit_line({"response": {"time": nanoseconds}}).split()[-1]

    assert [line(ns) for ns in (15_432, 1_234_567, 15_432_100, 1_234_567_890)] == [
        "15µs", "1.2ms", "15ms", "1.2s"
    ]  # fmt: skip
