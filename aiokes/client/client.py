"""A small asyncio client for the KES API over mutual TLS.

It speaks to aiokes and to KES alike, the way kms-go (the Go client of KES and MinIO) does:
POST for the mutating key APIs, PUT for hmac, base64 for every byte field, kms-go's error
decoding (spec §1.5), and its paginated listing. One aiohttp session per :class:`Client`, so
connections are pooled and kept alive. Used by the ``aiokes`` CLI, the benchmark and the tests.

    async with Client("127.0.0.1:7373", api_key=APIKey.parse(text), insecure=True) as client:
        dek = await client.generate_key("minio-default", b'{"bucket":"object"}')
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from yarl import URL

from aiokes.__about__ import __version__
from aiokes._go.base64 import b64encode_std
from aiokes.client.env import client_settings_from_env
from aiokes.client.errors import error_from_response, transport_reason
from aiokes.client.tls import KeyPassword, client_ssl_context
from aiokes.client.wire import (
    bytes_field,
    invalid_response,
    json_array,
    json_object,
    ndjson_names,
    parse_json,
    with_context,
)
from aiokes.errors import APIError, ClientSetupError, ServerUnreachable
from aiokes.identity import APIKey

__all__ = ["DEK", "Client", "client_from_env", "normalize_endpoint"]

Headers = dict[str, str]


@dataclass(frozen=True, slots=True)
class DEK:
    """A data encryption key: the plaintext to use once, the ciphertext to store."""

    plaintext: bytes = field(repr=False)
    ciphertext: bytes


class Client:
    """An mTLS client of a KES/aiokes server. Close it (or use ``async with``) when done.

    ``endpoint`` may list several servers, comma-separated, as ``KES_SERVER`` does: a request
    goes to the last server that answered and moves on to the next when one cannot be reached
    or answers 5xx (except 501), as KES's Go client fails over.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        cert_file: str | None = None,
        key_file: str | None = None,
        api_key: APIKey | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        key_password: KeyPassword | None = None,
        max_connections: int = 100,
    ) -> None:
        self.endpoints = [normalize_endpoint(e) for e in endpoint.split(",") if e.strip()]
        if not self.endpoints:
            raise ClientSetupError("no server endpoint given")
        self._current = 0
        self.timeout = timeout
        self._ssl_context = ssl_context or client_ssl_context(
            cert_file=cert_file,
            key_file=key_file,
            api_key=api_key,
            ca_file=ca_file,
            insecure=insecure,
            key_password=key_password,
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoint(self) -> str:
        """The server requests go to first (the last one that answered)."""
        return self.endpoints[self._current]

    def __repr__(self) -> str:
        return f"Client({','.join(self.endpoints)!r})"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- server ------------------------------------------------------------------------------

    async def version(self) -> dict[str, str]:
        document = json_object(await self._json("GET", "/version"), "/version")
        return {str(name): str(value) for name, value in document.items()}

    async def status(self) -> dict[str, Any]:
        return json_object(await self._json("GET", "/v1/status"), "/v1/status")

    async def ready(self) -> None:
        await self._call("GET", "/v1/ready")

    async def api(self) -> list[dict[str, Any]]:
        return json_array(await self._json("GET", "/v1/api"), "/v1/api")

    async def metrics(self) -> str:
        return (await self._call("GET", "/v1/metrics")).decode("utf-8")

    # -- keys --------------------------------------------------------------------------------

    async def create_key(self, name: str) -> None:
        await self._call("POST", _path("/v1/key/create/", name))

    async def import_key(self, name: str, key: bytes, cipher: str = "AES256") -> None:
        body = {"key": b64encode_std(key), "cipher": cipher}
        await self._call("POST", _path("/v1/key/import/", name), body)

    async def describe_key(self, name: str) -> dict[str, Any]:
        path = _path("/v1/key/describe/", name)
        return json_object(await self._json("GET", path), path)

    async def list_keys(self, prefix: str = "") -> list[str]:
        return await self._list("/v1/key/list/", prefix, "names", "name")

    async def delete_key(self, name: str) -> None:
        await self._call("DELETE", _path("/v1/key/delete/", name))

    async def generate_key(self, name: str, context: bytes = b"") -> DEK:
        path = _path("/v1/key/generate/", name)
        document = await self._json("POST", path, with_context({}, context))
        return DEK(
            plaintext=bytes_field(document, "plaintext", path),
            ciphertext=bytes_field(document, "ciphertext", path),
        )

    async def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> bytes:
        path = _path("/v1/key/encrypt/", name)
        body = with_context({"plaintext": b64encode_std(plaintext)}, context)
        return bytes_field(await self._json("POST", path, body), "ciphertext", path)

    async def decrypt(self, name: str, ciphertext: bytes, context: bytes = b"") -> bytes:
        path = _path("/v1/key/decrypt/", name)
        body = with_context({"ciphertext": b64encode_std(ciphertext)}, context)
        return bytes_field(await self._json("POST", path, body), "plaintext", path)

    async def bulk_decrypt(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Decrypt (ciphertext, context) pairs in one request (KES ≤ 2023-10, spec §3.4)."""
        path = _path("/v1/key/bulk/decrypt/", name)
        body = [with_context({"ciphertext": b64encode_std(ct)}, context) for ct, context in items]
        answers = json_array(await self._json("POST", path, body), path)
        return [bytes_field(answer, "plaintext", path) for answer in answers]

    async def hmac(self, name: str, message: bytes) -> bytes:
        path = _path("/v1/key/hmac/", name)
        return bytes_field(
            await self._json("PUT", path, {"message": b64encode_std(message)}), "hmac", path
        )

    # -- policies and identities -------------------------------------------------------------

    async def describe_policy(self, name: str) -> dict[str, Any]:
        path = _path("/v1/policy/describe/", name)
        return json_object(await self._json("GET", path), path)

    async def read_policy(self, name: str) -> dict[str, Any]:
        path = _path("/v1/policy/read/", name)
        return json_object(await self._json("GET", path), path)

    async def list_policies(self, prefix: str = "") -> list[str]:
        return await self._list("/v1/policy/list/", prefix, "names", "name")

    async def describe_identity(self, identity: str) -> dict[str, Any]:
        path = _path("/v1/identity/describe/", identity)
        return json_object(await self._json("GET", path), path)

    async def list_identities(self, prefix: str = "") -> list[str]:
        return await self._list("/v1/identity/list/", prefix, "identities", "identity")

    async def describe_self(self) -> dict[str, Any]:
        path = "/v1/identity/self/describe"
        return json_object(await self._json("GET", path), path)

    # -- logs --------------------------------------------------------------------------------

    async def stream_log(
        self, kind: Literal["audit", "error"]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the server's log events (one ndjson line each) until the stream ends."""
        if kind not in ("audit", "error"):
            raise ValueError(f"unknown log stream '{kind}': use 'audit' or 'error'")
        url = self._url(self.endpoint, f"/v1/log/{kind}")
        # A subscription is open-ended: only connecting is bounded by the timeout.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout)
        try:
            async with self._open_session().get(url, timeout=timeout) as response:
                if response.status >= 300:
                    raise await _error_of(response)
                async for line in response.content:
                    if line.strip():
                        yield json_object(parse_json(line, url.path), url.path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unreachable(self.endpoint, exc) from exc

    # -- raw access --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Headers, bytes]:
        """Send one request as given and return (status, headers, body) whatever the status.

        A server that cannot be reached, or answers 5xx (except 501), passes the request on
        to the next endpoint; when none is left the last failure is raised."""
        session = self._open_session()
        count = len(self.endpoints)
        failure: ServerUnreachable | None = None
        for attempt in range(count):
            index = (self._current + attempt) % count
            try:
                async with session.request(
                    method, self._url(self.endpoints[index], path), data=body, headers=headers
                ) as response:
                    answer = response.status, _headers(response), await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failure = self._unreachable(self.endpoints[index], exc)
                continue
            if answer[0] >= 500 and answer[0] != 501 and attempt + 1 < count:
                continue  # a failing server: the next one may answer
            self._current = index
            return answer
        assert failure is not None
        raise failure

    # -- internals ---------------------------------------------------------------------------

    async def _list(self, route: str, prefix: str, json_field: str, ndjson_field: str) -> list[str]:
        """Every name with ``prefix``, following ``continue_at`` as kms-go's ``ListIter`` does:
        the continuation token is the next request's prefix (spec §2.9)."""
        names: set[str] = set()
        seek = prefix or "*"  # "*" lists everything on every KES generation (spec §2.9, §3.3)
        while True:
            page, continue_at = await self._list_page(
                route + quote(seek, safe="*"), json_field, ndjson_field
            )
            names.update(page)
            if not page or not continue_at or continue_at == seek:
                return sorted(names)
            seek = continue_at

    async def _list_page(
        self, path: str, json_field: str, ndjson_field: str
    ) -> tuple[list[str], str]:
        status, headers, body = await self.request("GET", path)
        content_type = headers.get("Content-Type", "")
        if status >= 300:
            raise error_from_response(status, content_type, body)
        if content_type.startswith("application/x-ndjson"):
            return ndjson_names(body, ndjson_field, path), ""
        document = json_object(parse_json(body, path), path)
        names = document.get(json_field) or []
        continue_at = document.get("continue_at") or ""
        if not isinstance(names, list) or not isinstance(continue_at, str):
            raise invalid_response(path, f"'{json_field}' is not a list of names")
        return [str(name) for name in names], continue_at

    async def _json(self, method: str, path: str, body: object = None) -> Any:
        return parse_json(await self._call(method, path, body), path)

    async def _call(self, method: str, path: str, body: object = None) -> bytes:
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = None if payload is None else {"Content-Type": "application/json"}
        status, response_headers, content = await self.request(
            method, path, payload, headers=headers
        )
        if status >= 300:
            content_type = response_headers.get("Content-Type", "")
            raise error_from_response(status, content_type, content)
        return content

    @staticmethod
    def _url(endpoint: str, path: str) -> URL:
        # Paths are built already escaped; yarl must not quote them a second time.
        return URL(endpoint + path, encoded=True)

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl_context, limit=self._max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": f"aiokes/{__version__}"},
            )
        return self._session

    def _unreachable(self, endpoint: str, exc: BaseException) -> ServerUnreachable:
        error = ServerUnreachable(endpoint, transport_reason(exc, self.timeout))
        # Raised after the loop over the endpoints has moved on: keep the transport's exception.
        error.__cause__ = exc
        return error


def client_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    insecure: bool = False,
    server: str | None = None,
    api_key: str | None = None,
    ca_file: str | None = None,
    timeout: float = 15.0,
    key_password: KeyPassword | None = None,
) -> Client:
    """A client configured like the ``kes`` CLI: from ``MINIO_KES_*``/``KES_*`` variables
    (spec §9.2, first match wins); ``server`` and ``api_key`` override them."""
    settings = client_settings_from_env(environ, server=server, api_key=api_key)
    return Client(
        settings.endpoint,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        api_key=settings.api_key,
        ca_file=ca_file or settings.ca_file,
        insecure=insecure,
        timeout=timeout,
        key_password=key_password,
    )


def normalize_endpoint(endpoint: str) -> str:
    """``host:port`` → ``https://host:port``; a ``http://`` scheme is dropped as KES does."""
    endpoint = endpoint.strip().removeprefix("http://").rstrip("/")
    if not endpoint:
        raise ClientSetupError("no server endpoint given")
    if not endpoint.startswith("https://"):
        endpoint = "https://" + endpoint
    return endpoint


def _path(route: str, resource: str) -> str:
    return route + quote(resource, safe="")


def _headers(response: aiohttp.ClientResponse) -> Headers:
    return {name: value for name, value in response.headers.items()}


async def _error_of(response: aiohttp.ClientResponse) -> APIError:
    content_type = response.headers.get("Content-Type", "")
    return error_from_response(response.status, content_type, await response.read())
