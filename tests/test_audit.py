"""The audit log's lines: KES's audit-stream JSON, escaped correctly, batched, to a file or off."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path

import pytest

from aiokes.audit import AuditLog


def test_a_line_is_kes_audit_json_with_nanoseconds() -> None:
    line = AuditLog().line("10.0.0.5", "PUT", "/v1/key/create/k", "ab" * 32, 200, 0.0012)
    event = json.loads(line)
    assert line.endswith(b"\n")
    assert event["request"] == {
        "path": "/v1/key/create/k",
        "method": "PUT",
        "ip": "10.0.0.5",
        "identity": "ab" * 32,
    }
    assert event["response"] == {"code": 200, "time": 1_200_000}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["time"])


@pytest.mark.parametrize(
    "path", ['/v1/key/create/"quoted"', "/v1/key/create/back\\slash", "/v1/\n\x00ctl", "/v1/ü✓"]
)
def test_client_controlled_paths_are_escaped(path: str) -> None:
    assert json.loads(AuditLog().line("", "GET", path, "", 400, 0.0))["request"]["path"] == path


def test_missing_ip_and_identity_are_omitted() -> None:
    request = json.loads(AuditLog().line("", "GET", "/version", "", 200, 0.0))["request"]
    assert request == {"path": "/version", "method": "GET"}


def test_remembered_request_parts_never_mix_clients_paths_or_answers() -> None:
    log = AuditLog()
    seen = []
    for identity, path, status in [
        ("aa" * 32, "/v1/key/generate/k", 200),
        ("bb" * 32, "/v1/key/generate/k", 403),
        ("aa" * 32, "/v1/key/generate/k", 502),
        ("aa" * 32, "/v1/key/decrypt/k", 200),
    ]:
        event = json.loads(log.line("10.0.0.5", "PUT", path, identity, status, 0.001))
        seen.append((event["request"]["identity"], event["request"]["path"], event["response"]))
    assert seen == [
        ("aa" * 32, "/v1/key/generate/k", {"code": 200, "time": 1_000_000}),
        ("bb" * 32, "/v1/key/generate/k", {"code": 403, "time": 1_000_000}),
        ("aa" * 32, "/v1/key/generate/k", {"code": 502, "time": 1_000_000}),
        ("aa" * 32, "/v1/key/decrypt/k", {"code": 200, "time": 1_000_000}),
    ]


def test_remembered_request_parts_are_bounded() -> None:
    # Key names are the clients' choice: a scan over many names must not grow memory.
    log = AuditLog()
    for index in range(10_000):
        path = f"/v1/key/generate/key-{index}"
        assert json.loads(log.line("", "PUT", path, "", 200, 0.0))["request"]["path"] == path
    assert len(log._requests) <= 4096


def test_off_or_above_info_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog()
    log.configure(None, str(tmp_path / "a.log"))
    assert not log.enabled
    log.configure(logging.WARNING, str(tmp_path / "a.log"))
    assert not log.enabled
    log.write(b"x\n")
    assert not (tmp_path / "a.log").exists()


async def test_lines_of_one_loop_iteration_are_written_together(tmp_path: Path) -> None:
    log = AuditLog()
    log.configure(logging.INFO, str(tmp_path / "audit.log"))
    log.write(b"one\n")
    log.write(b"two\n")
    assert (tmp_path / "audit.log").read_bytes() == b""  # not yet: at the iteration's end
    await asyncio.sleep(0)
    assert (tmp_path / "audit.log").read_bytes() == b"one\ntwo\n"
    assert os.stat(tmp_path / "audit.log").st_mode & 0o777 == 0o640
    log.close()


def test_reconfiguring_reopens_the_file_after_rotation(tmp_path: Path) -> None:
    log = AuditLog()
    log.configure(logging.INFO, str(tmp_path / "audit.log"))
    log.write(b"before\n")
    (tmp_path / "audit.log").rename(tmp_path / "audit.log.1")
    log.configure(logging.INFO, str(tmp_path / "audit.log"))
    log.write(b"after\n")
    log.close()
    assert (tmp_path / "audit.log.1").read_bytes() == b"before\n"
    assert (tmp_path / "audit.log").read_bytes() == b"after\n"
