"""The baseline: the least work a KES-shaped server on aiohttp + uvloop + mTLS can do.

It parses the request (route and JSON body), seals a fresh 32-byte DEK with a cached AES-GCM
key per key name and answers with KES's ``generate`` JSON shape; ``decrypt`` opens what it
sealed. Nothing else: no policy, no keystore, no audit, no metrics. Results of aiokes are
reported as ratios to this server measured in the same run, so they carry over between
machines. ``--work none`` answers a constant body without parsing or crypto, to show how fast
the load generator itself can go.

    python -m bench.baseline --cert server.crt --key server.key --ca ca.crt --addr 127.0.0.1:0
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import signal
import ssl
import sys

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["BaselineHandler", "baseline_ssl_context", "main"]

_GENERATE = "/v1/key/generate/"
_DECRYPT = "/v1/key/decrypt/"
_CREATE = "/v1/key/create/"
_NONCE_SIZE = 12
_CONSTANT = b'{"plaintext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","ciphertext":"AA=="}\n'


class BaselineHandler:
    """aiohttp low-level handler; ``seal=False`` skips parsing and crypto entirely."""

    def __init__(self, *, seal: bool = True) -> None:
        self._seal = seal
        self._keys: dict[str, AESGCM] = {}

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if not self._seal:
            await request.read()
            return _json(_CONSTANT)
        path = request.path
        body = await request.read()
        try:
            if path.startswith(_GENERATE):
                return self._generate(path[len(_GENERATE) :], body)
            if path.startswith(_DECRYPT):
                return self._decrypt(path[len(_DECRYPT) :], body)
            if path.startswith(_CREATE):  # so the harness's set-up works unchanged
                self._key(path[len(_CREATE) :])
                return web.Response(status=200)
        except (ValueError, KeyError, TypeError, InvalidTag, binascii.Error):
            return _json(b'{"message":"bad request"}\n', status=400)
        if path in ("/version", "/v1/ready"):
            return _json(b'{"version":"baseline"}\n')
        return web.Response(status=404, body=b"404 page not found\n")

    def _key(self, name: str) -> AESGCM:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = AESGCM(AESGCM.generate_key(256))
        return key

    def _generate(self, name: str, body: bytes) -> web.Response:
        context = _context(body)
        plaintext = os.urandom(32)
        nonce = os.urandom(_NONCE_SIZE)
        ciphertext = nonce + self._key(name).encrypt(nonce, plaintext, context)
        reply = {"plaintext": _b64(plaintext), "ciphertext": _b64(ciphertext)}
        return _json(json.dumps(reply, separators=(",", ":")).encode() + b"\n")

    def _decrypt(self, name: str, body: bytes) -> web.Response:
        document = json.loads(body)
        sealed = base64.b64decode(document["ciphertext"])
        context = base64.b64decode(document.get("context") or "")
        opened = self._key(name).decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], context)
        reply = json.dumps({"plaintext": _b64(opened)}, separators=(",", ":"))
        return _json(reply.encode() + b"\n")


def _context(body: bytes) -> bytes:
    if not body:
        return b""
    document = json.loads(body)
    return base64.b64decode(document.get("context") or "")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def baseline_ssl_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """TLS ≥ 1.2, client certificate required and verified against ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve(host: str, port: int, context: ssl.SSLContext, *, seal: bool) -> None:
    server = web.Server(BaselineHandler(seal=seal), keepalive_timeout=90.0, access_log=None)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"ready {bound}", flush=True)  # the harness waits for this line
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:0", help="host:port (port 0: any free)")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True, help="CA that signed the client certificates")
    parser.add_argument("--work", choices=["seal", "none"], default="seal")
    args = parser.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    context = baseline_ssl_context(args.cert, args.key, args.ca)
    coroutine = serve(host or "127.0.0.1", int(port), context, seal=args.work == "seal")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of aiokes on Linux
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)
    sys.exit(0)


if __name__ == "__main__":
    main()
