"""``aiokes status``: the server's state, its APIs, and any extra fields it reports."""

from __future__ import annotations

import json

from tests.cli.conftest import ainvoke
from tests.conftest import RunningServer
from tests.read_only import read_only_directory


async def test_status_shows_the_server_and_its_state(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    result = await ainvoke(["status"], admin_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"● 127.0.0.1:{server.server.port}"
    labels = [line.split()[0] for line in lines[1:6]]
    assert labels == ["Version", "Uptime", "Latency", "OS", "CPUs"]
    assert any(line.startswith("  Keystore reachable") for line in lines)


async def test_status_prints_fields_beyond_kes(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    state = await server.client().status()
    extra = set(state) - {"version", "os", "arch", "uptime", "num_cpu", "num_cpu_used",
                          "mem_heap_used", "mem_stack_used", "keystore_latency",
                          "keystore_unreachable", "keystore_unavailable"}  # fmt: skip
    text = (await ainvoke(["status"], admin_env)).stdout
    assert all(f"\n  {name}" in text for name in extra)


async def test_status_short_and_json(server: RunningServer, admin_env: dict[str, str]) -> None:
    short = await ainvoke(["status", "-s"], admin_env)
    assert short.stdout == f"● 127.0.0.1:{server.server.port}\n"
    document = json.loads((await ainvoke(["status", "--json"], admin_env)).stdout)
    assert document["version"] == (await server.client().version())["version"]


async def test_status_api_lists_routes_with_timeouts(admin_env: dict[str, str]) -> None:
    lines = (await ainvoke(["status", "-s", "--api"], admin_env)).stdout.splitlines()
    assert lines[2].split() == ["Method", "API", "Timeout"]
    rows = {line.split()[1]: line.split() for line in lines[3:]}
    assert rows["/version"] == ["GET", "/version", "10s"]
    assert rows["/v1/log/audit"] == ["GET", "/v1/log/audit", "Inf"]
    routes = json.loads((await ainvoke(["status", "--api", "--json"], admin_env)).stdout)
    assert {"method": "PUT", "path": "/v1/key/create/"}.items() <= next(
        r for r in routes if r["path"] == "/v1/key/create/"
    ).items()


async def test_status_says_when_the_keystore_is_read_only(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    with read_only_directory(server.keystore_dir):
        lines = (await ainvoke(["status"], admin_env)).stdout.splitlines()
    assert any(line.startswith("  Keystore reachable, read-only, latency") for line in lines)
    assert not any("keystore_read_only" in line for line in lines)
