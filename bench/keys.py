"""Getting a target ready for a workload: create its key names, seal one DEK per key for the
decrypt requests. Runs over the harness's own connections, so API keys and client
certificates work alike against aiokes, KES or anything else with KES's API."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Sequence

from bench.connection import ClientTLS, Connection, Endpoint, client_context
from bench.scenarios import CONTEXT
from bench.wire import Response, build_request, json_body

__all__ = ["SetupError", "create_keys", "seal_samples"]

_CONCURRENCY = 16


class SetupError(Exception):
    """The target refused to create a key or to seal a sample DEK."""


def create_keys(endpoint: Endpoint, tls: ClientTLS, names: Sequence[str]) -> None:
    """Create every key that does not exist yet (KES answers 400 "key already exists")."""

    async def create(connection: Connection, name: str) -> None:
        request = build_request("POST", f"/v1/key/create/{name}", endpoint.authority)
        response = await connection.request(request)
        if response.status != 200 and b"key already exists" not in response.body:
            raise SetupError(f"creating key '{name}': {_describe(response)}")

    _run(_each(endpoint, tls, names, create))


def seal_samples(endpoint: Endpoint, tls: ClientTLS, names: Sequence[str]) -> dict[str, bytes]:
    """One ciphertext per key name, sealed with the workload's context."""
    sealed: dict[str, bytes] = {}

    async def seal(connection: Connection, name: str) -> None:
        body = json_body(context=CONTEXT)
        request = build_request("POST", f"/v1/key/generate/{name}", endpoint.authority, body)
        response = await connection.request(request)
        if response.status != 200:
            raise SetupError(f"generating a DEK with key '{name}': {_describe(response)}")
        try:
            sealed[name] = base64.b64decode(json.loads(response.body)["ciphertext"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SetupError(f"key '{name}': unexpected generate answer ({exc})") from None

    _run(_each(endpoint, tls, names, seal))
    return sealed


async def _each(
    endpoint: Endpoint,
    tls: ClientTLS,
    names: Sequence[str],
    step: Callable[[Connection, str], Awaitable[None]],
) -> None:
    context = client_context(tls)
    pending = list(reversed(names))

    async def worker() -> None:
        connection = await Connection.open(endpoint, context)
        try:
            while pending:
                await step(connection, pending.pop())
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(min(_CONCURRENCY, len(names)))))


def _run(coroutine: Awaitable[None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(300):
            await coroutine

    asyncio.run(bounded())


def _describe(response: Response) -> str:
    text = response.body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {response.status} {text}"
