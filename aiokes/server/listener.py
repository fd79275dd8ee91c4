"""What the serving processes accept connections on: the listening socket and the TLS context.

The supervisor builds both once, before it forks, so that every worker shares one socket and
one set of TLS session-ticket keys; a single process builds them at start.
"""

from __future__ import annotations

import socket
import ssl

from aiokes.config import ListenAddress, ServerConfig
from aiokes.errors import ServerStartError
from aiokes.tls import server_context

__all__ = ["listen_socket", "tls_context"]

_BACKLOG = 1024


def listen_socket(address: ListenAddress) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ServerStartError(
            f"cannot listen on {address.host}:{address.port}: {exc.strerror}"
        ) from exc
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


def tls_context(config: ServerConfig) -> ssl.SSLContext:
    tls = config.tls
    # Any skip_auth route relaxes "require a certificate" to "request one" (KES does the same),
    # so that e.g. a Kubernetes probe without a certificate reaches /v1/ready.
    require = not any(api.skip_auth for api in config.api.values())
    return server_context(
        tls.cert_file,
        tls.key_file,
        password=tls.password,
        verify_client_certs=tls.verify_client_certs,
        ca_path=tls.ca_path,
        require_client_cert=require,
    )
