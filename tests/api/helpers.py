"""Raw HTTP/1.1 over TLS for the API conformance tests, KES's expected bytes, and the shared
server the table-driven test modules run on.

The typed :class:`~aiokes.client.Client` normalises what it sends (paths, bodies, headers).
A conformance test must control every byte — a path with ``..`` left in, a POST without
``Content-Length``, a chunked body — so :func:`send` writes the request by hand on a TLS
stream and reads the answer until the server closes the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from aiokes.config import ListenAddress, load_config
from aiokes.server import Server
from tests.conftest import RunningServer, _default_config, make_identity

__all__ = [
    "KNOWN_KEY",
    "Reply",
    "b64",
    "client_context",
    "error_body",
    "field_bytes",
    "fresh_name",
    "go_json_string",
    "import_body",
    "import_known_key",
    "json_body",
    "put_json",
    "send",
    "shared_server",
    "snapshot",
    "start_shared_server",
]

_GO_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_NO_IDENTITY = object()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def is_error(self, status: int, message: str) -> bool:
        """KES's error response: status, JSON content type and the exact body bytes."""
        return (
            self.status == status
            and self.content_type == "application/json"
            and self.body == error_body(message)
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def go_json_string(text: str) -> str:
    """A string as Go's ``json.Encoder`` writes it (HTML characters escaped)."""
    return json.dumps(text, ensure_ascii=False).translate(_GO_HTML_ESCAPES)


def error_body(message: str) -> bytes:
    """KES HEAD's error body: the newline of ``json.Encoder`` lands before the brace."""
    return ('{"message":' + go_json_string(message) + "\n}").encode()


def json_body(value: Any) -> bytes:
    """A success body as KES writes it: compact JSON and one newline."""
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def client_context(
    server: RunningServer,
    who: object = _NO_IDENTITY,
    *,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> ssl.SSLContext:
    """A TLS client context trusting the test CA, presenting ``who`` (default: the admin;
    ``None``: no certificate), or the explicit ``cert_file``/``key_file`` pair."""
    context = ssl.create_default_context(cafile=server.ca_file)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
        return context
    identity = server.admin if who is _NO_IDENTITY else who
    # Duck-typed: pytest imports conftest.py as "conftest", a module other than tests.conftest,
    # so isinstance against the imported ClientIdentity would never match.
    if identity is not None:
        context.load_cert_chain(identity.cert_file, identity.key_file)  # type: ignore[attr-defined]
    return context


async def send(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    who: object = _NO_IDENTITY,
    context: ssl.SSLContext | None = None,
    chunked: bool = False,
    split_at: int | None = None,
    between: Callable[[], Awaitable[None]] | None = None,
) -> Reply:
    """Send one request exactly as given (``path`` is written verbatim) and read the reply.

    ``who`` is a conftest identity (default: the admin; ``None``: no certificate) unless a
    ``context`` is given. A request without a body carries no ``Content-Length`` at all;
    ``chunked`` sends the body with ``Transfer-Encoding: chunked`` instead, so the server
    cannot know its size in advance. ``split_at`` writes the head, then the body up to that
    offset, then the rest, each in its own TLS write; ``between`` is awaited before the rest.
    """
    context = context or client_context(server, who)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.server.port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.server.port}"]
        lines.append("Connection: close")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            body = _chunks(body or b"")
        elif body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = body or b""
        if split_at is None:
            writer.write(head + body)
        else:
            writer.write(head + body[:split_at])
            await writer.drain()
            if between is not None:
                await between()
            writer.write(body[split_at:])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        if not raw:
            raise ConnectionResetError("the server closed the connection without an answer")
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    return _parse_reply(raw)


def _chunks(body: bytes, size: int = 1 << 16) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def _parse_reply(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None:
        body = body[: int(length)]
    return Reply(int(status_line.split()[1]), headers, body)


def fresh_name(prefix: str = "t") -> str:
    """A key name no other test uses, for tests on a shared server."""
    return f"{prefix}-{uuid.uuid4().hex}"


def field_bytes(document: dict[str, str], field: str) -> bytes:
    return base64.b64decode(document[field], validate=True)


async def put_json(server: RunningServer, path: str, body: object) -> dict[str, str]:
    """PUT a JSON body; the reply must be a 200 with a compact JSON object and a newline."""
    reply = await send(server, "PUT", path, json.dumps(body).encode())
    assert reply.status == 200, reply
    assert reply.content_type == "application/json"
    assert reply.body.endswith(b"\n")
    assert b" " not in reply.body
    document: dict[str, str] = reply.json()
    return document


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (recursively) with its bytes: proof that nothing
    changed on disk."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# A master key known to the test, so ciphertexts can be made and checked offline.
KNOWN_KEY = bytes(range(32))


def import_body(key: bytes = KNOWN_KEY, cipher: str = "AES256") -> bytes:
    return json.dumps({"key": b64(key), "cipher": cipher}).encode()


async def import_known_key(
    server: RunningServer, name: str, key: bytes = KNOWN_KEY, cipher: str = "AES256"
) -> None:
    reply = await send(server, "PUT", f"/v1/key/import/{name}", import_body(key, cipher))
    assert reply.status == 200, reply


async def start_shared_server(directory: Path, ca: trustme.CA, extra: str = "") -> RunningServer:
    """The conftest ``server`` (same config, same identities), for a module-scoped fixture:
    the tables of bad inputs send hundreds of requests that change nothing, and starting a
    server per request would dominate the suite's run time. Stop it with ``aclose``."""
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    certificate.private_key_pem.write_to_path(str(directory / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    people = {name: make_identity(directory, name) for name in ("admin", "app", "stranger")}
    config_file = directory / "config.yml"
    text = _default_config(None) + textwrap.dedent(extra)
    identities = {name: person.identity for name, person in people.items()}
    config_file.write_text(text.format(dir=directory, **identities))
    server = Server(load_config(config_file), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    return RunningServer(
        server,
        directory,
        str(directory / "ca.crt"),
        people["admin"],
        people["app"],
        people["stranger"],
        config_file,
    )


@contextlib.asynccontextmanager
async def shared_server(directory: Path, ca: trustme.CA) -> AsyncIterator[RunningServer]:
    """:func:`start_shared_server` holding the key ``k`` (= KNOWN_KEY, AES256), stopped at the
    end. Tests on it that store something use :func:`fresh_name`."""
    running = await start_shared_server(directory, ca)
    try:
        await import_known_key(running, "k")
        yield running
    finally:
        await running.aclose()
