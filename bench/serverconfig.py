"""Config files, client credentials and readiness checks for the servers the harness starts."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from aiokes.certificate import api_key_certificate, private_key_pem
from aiokes.identity import APIKey
from bench.certs import BenchCertificates
from bench.connection import ClientTLS, Connection, Endpoint, client_context
from bench.fakevault import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from bench.wire import build_request

__all__ = [
    "MINIO_PATHS",
    "TargetError",
    "aiokes_config",
    "api_key_files",
    "wait_until_serving",
]

# What MinIO calls (spec §11.2), plus key creation for the harness's own set-up.
MINIO_PATHS = (
    "/v1/key/create/*",
    "/v1/key/generate/*",
    "/v1/key/decrypt/*",
    "/v1/key/bulk/decrypt/*",
    "/v1/key/describe/*",
    "/v1/key/list/*",
    "/v1/status",
    "/v1/metrics",
    "/v1/api",
)


class TargetError(Exception):
    """A target could not be started or reached."""


def aiokes_config(
    workdir: Path, certs: BenchCertificates, *, vault_url: str = "", audit: bool = True
) -> Path:
    """A KES config file: the harness's client under a MinIO-like policy (not the admin, so
    every request pays the policy check as MinIO's does), an fs keystore in ``workdir`` or
    the Azure keystore on the fake vault at ``vault_url``."""
    allow = "".join(f"      - {path}\n" for path in MINIO_PATHS)
    text = (
        "version: v1\n"
        "address: 127.0.0.1:7373\n"
        "admin:\n  identity: disabled\n"
        f"tls:\n  key: {certs.server_key}\n  cert: {certs.server_cert}\n"
        "policy:\n  minio:\n    allow:\n"
        f"{allow}"
        f"    identities:\n      - {certs.client_identity}\n"
        f"log:\n  error: on\n  audit: {'on' if audit else 'off'}\n"
        f"{_keystore_yaml(workdir, vault_url)}"
    )
    path = workdir / "config.yml"
    path.write_text(text)
    return path


def _keystore_yaml(workdir: Path, vault_url: str) -> str:
    if not vault_url:
        return f"keystore:\n  fs:\n    path: {workdir / 'keys'}\n"
    return (
        "keystore:\n  azure:\n    keyvault:\n"
        f"      endpoint: {vault_url}\n"
        "      credentials:\n"
        f"        tenant_id: {TENANT_ID}\n"  # the fake vault's credentials: not secrets
        f"        client_id: {CLIENT_ID}\n"
        f"        client_secret: {CLIENT_SECRET}\n"
        f"      authority_host: {vault_url}\n"
        f"      ca: {workdir / 'vault' / 'fake-vault-ca.pem'}\n"
    )


def api_key_files(api_key: str, stem: Path) -> tuple[str, str]:
    """Write the self-signed Ed25519 certificate a ``kes:v1:`` key stands for (spec §4.7)
    and its private key (0600); returns (certificate file, key file)."""
    certificate, key = api_key_certificate(APIKey.parse(api_key.strip()))
    cert_file, key_file = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(private_key_pem(key))
    return str(cert_file), str(key_file)


def wait_until_serving(
    endpoint: Endpoint,
    tls: ClientTLS,
    process: subprocess.Popen[str],
    timeout: float,
    log: Path,
) -> None:
    """Poll ``GET /version`` over mTLS until it answers 200, the process dies or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetError(f"the server exited with {process.returncode}: {_tail(log)}")
        if asyncio.run(_answers(endpoint, tls)):
            return
        time.sleep(0.2)
    raise TargetError(f"the server did not answer within {timeout:g}s: {_tail(log)}")


async def _answers(endpoint: Endpoint, tls: ClientTLS) -> bool:
    try:
        async with asyncio.timeout(5.0):
            connection = await Connection.open(endpoint, client_context(tls))
            try:
                request = build_request("GET", "/version", endpoint.authority)
                return (await connection.request(request)).status == 200
            finally:
                connection.close()
    except (OSError, TimeoutError):
        return False


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return " | ".join(lines[-5:]) or f"(empty log {log})"
