"""Handlers of the system routes: version, status, readiness, metrics, the API list, log streams."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

from aiokes.__about__ import __version__
from aiokes.api.call import Call
from aiokes.api.wire import empty_response, json_response, text_response
from aiokes.config.schema import MirrorKeystoreConfig
from aiokes.errors import APIError, KeystoreError, KeystoreUnreachable
from aiokes.http import Response, header_block
from aiokes.keeper.client import KeeperKeys
from aiokes.keystore.mirror import MirrorKeystore
from aiokes.log import LogStream
from aiokes.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aiokes.metrics import resident_bytes, usable_cpus

__all__ = [
    "api",
    "audit_log",
    "error_log",
    "metrics",
    "ready",
    "status",
    "version",
]

_NDJSON_HEADERS = header_block({"Content-Type": "application/x-ndjson"})
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


async def version(call: Call) -> Response:
    return json_response({"version": __version__, "commit": ""})


async def status(call: Call) -> Response:
    """Always 200, even when the keystore is down. An unreachable keystore is reported with
    both flags: kms-go rejects ``keystore_unreachable`` without ``keystore_unavailable``.
    A keystore that serves its keys but cannot store new ones adds aiokes's own
    ``keystore_read_only: true`` (KES has no such state; its clients ignore unknown fields)."""
    reply: dict[str, Any] = {
        "version": __version__,
        "os": sys.platform,
        "arch": _GO_ARCH.get(platform.machine(), platform.machine()),
        "uptime": round(time.monotonic() - call.services.metrics.started),
        "num_cpu": os.cpu_count() or 1,
        "num_cpu_used": usable_cpus(),
        "mem_heap_used": resident_bytes(),
        "mem_stack_used": 0,
    }
    try:
        state = await call.state.master_keys.status()
        reply["keystore_latency"] = max(1, round(state.latency * 1000))
        if state.read_only:
            reply["keystore_read_only"] = True
    except KeystoreError:
        reply["keystore_unavailable"] = True
        reply["keystore_unreachable"] = True
    reply["cache"] = _cache_stats(call)
    mirror = await _mirror_view(call)
    if mirror is not None:
        reply["mirror"] = mirror[0]
    return json_response(reply)


async def ready(call: Call) -> Response:
    """200 while the keystore serves keys, read-only included: a readiness probe that failed
    then would pull an instance that can still generate and decrypt, MinIO's everyday calls,
    and, on a directory shared by every instance, all of them. ``/v1/status`` tells."""
    try:
        await call.state.master_keys.status()
    except KeystoreUnreachable:
        raise APIError("key store is not reachable", status=504) from None
    except KeystoreError:
        raise APIError("key store is unavailable", status=502) from None
    return empty_response()


async def metrics(call: Call) -> Response:
    call.services.metrics.publish_cache(call.state.master_keys.stats())  # this worker's, up to now
    text = call.services.metrics.render()
    mirror = await _mirror_view(call)
    if mirror is not None:
        text += mirror[1]
    return text_response(text, METRICS_CONTENT_TYPE)


async def api(call: Call) -> Response:
    routes = [
        {
            "method": route.method,
            "path": route.path,
            "max_body": route.max_body,
            "timeout": int(route.timeout),
        }
        for route in call.state.routes.routes
    ]
    return json_response(routes)


async def audit_log(call: Call) -> Response:
    return await _stream(call, call.services.audit_stream)


async def error_log(call: Call) -> Response:
    return await _stream(call, call.services.error_stream)


async def _stream(call: Call, stream: LogStream) -> Response:
    """ndjson, one event per line, flushed per event, until the client goes away."""
    subscription = await stream.open()  # before the headers: every worker forwards by then
    try:
        out = await call.request.stream(_NDJSON_HEADERS)
        async for line in subscription:
            await out.write(line)
    finally:
        subscription.close()
    return out.response


def _cache_stats(call: Call) -> dict[str, int | bool]:
    """The cache counters summed over all workers (each publishes its own)."""
    metrics = call.services.metrics
    metrics.publish_cache(call.state.master_keys.stats())
    return metrics.cache_totals().status()


async def _mirror_view(call: Call) -> tuple[dict[str, object], str] | None:
    """A mirror keystore's status object and metrics lines: from the keystore in a single
    process, from the key keeper (which holds the keystore) in a worker of several."""
    keystore, keys = call.state.keystore, call.state.master_keys
    if isinstance(keystore, MirrorKeystore):
        report = keystore.report()
        return report.as_status(), report.as_metrics()
    if not isinstance(call.state.config.keystore, MirrorKeystoreConfig):
        return None
    if not isinstance(keys, KeeperKeys):
        return None
    try:
        return await keys.mirror_view()
    except KeystoreError:  # the keeper is gone (being restarted): nothing to show now
        return None
