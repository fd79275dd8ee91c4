"""The listen address is parsed once, with the config: the file's ``address``, ``--addr`` and
the listener agree, and a bad address is a config error at its line, before anything starts."""

from __future__ import annotations

import importlib
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiokes.cli import main
from aiokes.config import ListenAddress, ServerConfig, parse_config, parse_listen_address
from aiokes.errors import ConfigError
from aiokes.server.listener import listen_socket

DATA = Path(__file__).parent.parent / "data" / "config"
MINIMAL = (DATA / "minimal.yml").read_text()
EVERY_INTERFACE = "0.0.0.0"  # what KES listens on without a host


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[::1]:7373", ListenAddress("::1", 7373)),
        ("0.0.0.0:7373", ListenAddress(EVERY_INTERFACE, 7373)),
        (":7373", ListenAddress(EVERY_INTERFACE, 7373)),
        ("localhost:7000", ListenAddress("localhost", 7000)),
        ("127.0.0.1:0", ListenAddress("127.0.0.1", 0)),
    ],
)
def test_the_config_file_address_is_parsed_into_host_and_port(
    text: str, expected: ListenAddress
) -> None:
    config = parse_config(f"address: '{text}'\n" + MINIMAL, environ={})
    assert config.address == expected


def test_a_missing_address_is_kes_default() -> None:
    assert parse_config(MINIMAL, environ={}).address == ListenAddress(EVERY_INTERFACE, 7373)


def test_an_address_from_the_environment_is_parsed_too() -> None:
    config = parse_config("address: ${ADDR}\n" + MINIMAL, environ={"ADDR": "[::1]:7000"})
    assert config.address == ListenAddress("::1", 7000)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (":https", "invalid address ':https': the port must be a number from 0 to 65535"),
        (":99999", "invalid address ':99999': the port must be a number from 0 to 65535"),
        (":", "invalid address ':': the port must be a number from 0 to 65535"),
        ("7373", "invalid address '7373': expected host:port or :port"),
        ("::1:7373", "invalid address '::1:7373': expected host:port or :port"),
    ],
)
def test_a_bad_address_is_a_config_error_at_its_line(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + f"address: '{text}'\n", file="server.yml", environ={})
    error = info.value
    assert (error.file, error.line, error.key, error.detail) == (
        "server.yml",
        9,
        "address",
        problem,
    )
    assert str(error) == f"server.yml:9: config 'address': {problem}"


@pytest.mark.parametrize(
    ("address", "text"),
    [
        (ListenAddress("::1", 7373), "[::1]:7373"),
        (ListenAddress(EVERY_INTERFACE, 7373), "0.0.0.0:7373"),
        (ListenAddress("localhost", 0), "localhost:0"),
    ],
)
def test_an_address_prints_as_it_parses(address: ListenAddress, text: str) -> None:
    assert str(address) == text
    assert parse_listen_address(text) == address


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_listener_binds_a_parsed_ipv6_address() -> None:
    sock = listen_socket(parse_listen_address("[::1]:0"))
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockname()[0] == "::1"
    finally:
        sock.close()


# -- --addr ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [":https", ":99999", "7373"])
def test_a_bad_addr_flag_is_refused_before_the_config_is_read(text: str) -> None:
    result = CliRunner().invoke(main, ["server", "--config", "missing.yml", "--addr", text])
    assert result.exit_code == 1  # kes exits 1 on usage errors too
    assert f"Invalid value for '--addr': invalid address '{text}'" in result.output


def test_the_addr_flag_overrides_the_config_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "server.yml"
    config_file.write_text("address: 0.0.0.0:7373\n" + MINIMAL)
    started: list[tuple[ServerConfig, ListenAddress | None]] = []

    def run(config: ServerConfig, addr: ListenAddress | None, *args: Any, **kwargs: Any) -> None:
        started.append((config, addr))

    # The module, not the command that aiokes.cli exports under the same name.
    monkeypatch.setattr(importlib.import_module("aiokes.cli.server"), "_run", run)
    result = CliRunner().invoke(
        main, ["server", "--config", str(config_file), "--addr", "[::1]:7000"]
    )
    assert result.exit_code == 0, result.output
    [(config, addr)] = started
    assert addr == ListenAddress("::1", 7000)
    assert config.address == ListenAddress(EVERY_INTERFACE, 7373)
