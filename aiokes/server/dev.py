"""``aiokes server --dev``: a throw-away server with no set-up, as ``kes server --dev``.

In-memory keystore (or an fs keystore directory, to keep keys across restarts), a fresh
self-signed ECDSA server certificate for this host, and a fresh API key that is the admin.
The TLS files live in a private temporary directory that is removed on exit.
"""

from __future__ import annotations

import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiokes.certificate import dev_server_certificate, write_certificate, write_private_key
from aiokes.config import (
    FSKeystoreConfig,
    ListenAddress,
    MemoryKeystoreConfig,
    ServerConfig,
    TLSConfig,
)
from aiokes.identity import APIKey

__all__ = ["DEV_ADDRESS", "DevEnvironment", "dev_environment"]

DEV_ADDRESS = ListenAddress("0.0.0.0", 7373)  # noqa: S104 - as kes server --dev


@dataclass(frozen=True, slots=True)
class DevEnvironment:
    config: ServerConfig
    api_key: APIKey
    directory: tempfile.TemporaryDirectory[str]


def dev_environment(address: ListenAddress = DEV_ADDRESS, keystore_dir: str = "") -> DevEnvironment:
    """``keystore_dir`` keeps the keys in an fs keystore there instead of in memory."""
    api_key = APIKey.generate()
    directory = tempfile.TemporaryDirectory(prefix="aiokes-dev-")
    certificate, key = dev_server_certificate(_host_ips(), ("localhost", socket.gethostname()))
    cert_file, key_file = Path(directory.name, "server.crt"), Path(directory.name, "server.key")
    write_certificate(cert_file, certificate)
    write_private_key(key_file, key)
    config = ServerConfig(
        file="<dev>",
        address=address,
        admin_identity=api_key.identity,
        tls=TLSConfig(key_file=str(key_file), cert_file=str(cert_file)),
        keystore=FSKeystoreConfig(path=keystore_dir) if keystore_dir else MemoryKeystoreConfig(),
    )
    return DevEnvironment(config, api_key, directory)


def _host_ips() -> list[str]:
    ips = {"127.0.0.1", "::1"}
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            ips.add(str(sockaddr[0]))
    except OSError:  # no resolvable host name: loopback is enough for a dev server
        pass
    return sorted(ips)
