"""A real ``aiokes server`` process (``--workers N``) on a config written for the test."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import trustme

from aiokes.client import Client
from tests.conftest import ClientIdentity, make_identity

START_TIMEOUT = 60.0


@dataclass
class Setup:
    directory: Path
    config_file: Path
    ca_file: str
    admin: ClientIdentity

    def client(self, port: int) -> Client:
        return Client(
            f"https://127.0.0.1:{port}",
            cert_file=self.admin.cert_file,
            key_file=self.admin.key_file,
            ca_file=self.ca_file,
        )


def server_setup(directory: Path, tls_ca: trustme.CA, keystore: str) -> Setup:
    issued = tls_ca.issue_cert("127.0.0.1")
    issued.private_key_pem.write_to_path(str(directory / "server.key"))
    issued.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    tls_ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    admin = make_identity(directory, "admin")
    config_file = directory / "config.yml"
    config_file.write_text(
        textwrap.dedent(
            f"""\
            address: 127.0.0.1:0
            admin:
              identity: {admin.identity}
            tls:
              key: {directory}/server.key
              cert: {directory}/server.crt
            log:
              audit: off
            """
        )
        + keystore
    )
    return Setup(directory, config_file, str(directory / "ca.crt"), admin)


async def start_process(setup: Setup, *workers: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiokes", "server", "--config", str(setup.config_file), *workers,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    port = await asyncio.wait_for(port_from_banner(process), START_TIMEOUT)
    return process, port


async def port_from_banner(process: asyncio.subprocess.Process) -> int:
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if line.startswith("API"):
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("the server printed no API line")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
