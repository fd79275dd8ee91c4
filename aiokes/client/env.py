"""Client settings from the environment, with the variable names and order of the ``kes``
CLI (``internal/cli/env.go``, spec §9.2): the first variable that is set (and not empty) wins."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokes.errors import ClientSetupError
from aiokes.identity import APIKey

__all__ = [
    "API_KEY_VARIABLES",
    "CA_VARIABLES",
    "CERT_FILE_VARIABLES",
    "DEFAULT_SERVER",
    "KEY_FILE_VARIABLES",
    "SERVER_VARIABLES",
    "ClientSettings",
    "client_settings_from_env",
]

SERVER_VARIABLES = ("MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT")
API_KEY_VARIABLES = ("MINIO_KES_API_KEY", "KES_API_KEY", "MINIO_KMS_KES_API_KEY")
KEY_FILE_VARIABLES = ("MINIO_KES_KEY_FILE", "KES_CLIENT_KEY", "MINIO_KES_CLIENT_KEY")
CERT_FILE_VARIABLES = ("MINIO_KES_CERT_FILE", "KES_CLIENT_CERT", "MINIO_KES_CLIENT_CERT")
# Not read by the kes CLI: MinIO's name for the CA that signed the KES server's certificate.
CA_VARIABLES = ("MINIO_KMS_KES_CAPATH",)
DEFAULT_SERVER = "127.0.0.1:7373"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    endpoint: str
    api_key: APIKey | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None


def client_settings_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    server: str | None = None,
    api_key: str | None = None,
) -> ClientSettings:
    """Resolve the server and the client credentials; explicit arguments win over variables.

    Several comma-separated servers may be configured; the client fails over between them.
    Missing or contradicting credentials raise :class:`ClientSetupError`.
    """
    environ = os.environ if environ is None else environ
    servers = server or _first(environ, SERVER_VARIABLES) or DEFAULT_SERVER
    endpoint = ",".join(s.strip() for s in servers.split(",") if s.strip()) or DEFAULT_SERVER
    key_text, key_source = _api_key_text(environ, api_key)
    cert_file = _first(environ, CERT_FILE_VARIABLES)
    key_file = _first(environ, KEY_FILE_VARIABLES)
    _check_combination(bool(key_text), cert_file, key_file)
    parsed_key = _parse_api_key(key_text, key_source) if key_text else None
    ca_file = _first(environ, CA_VARIABLES)
    return ClientSettings(endpoint, parsed_key, cert_file, key_file, ca_file)


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)


def _api_key_text(environ: Mapping[str, str], explicit: str | None) -> tuple[str | None, str]:
    if explicit:
        return explicit, "--api-key"
    for name in API_KEY_VARIABLES:
        if environ.get(name):
            return environ[name], name
    return None, ""


def _check_combination(has_api_key: bool, cert_file: str | None, key_file: str | None) -> None:
    if has_api_key and (cert_file or key_file):
        raise ClientSetupError(
            "an API key and a client certificate/private key cannot be used at the same time"
        )
    if not has_api_key and not cert_file and not key_file:
        raise ClientSetupError(
            "no client credentials: set MINIO_KES_API_KEY (or KES_API_KEY), "
            "or KES_CLIENT_CERT and KES_CLIENT_KEY"
        )
    if cert_file and not key_file:
        raise ClientSetupError("no private key file for the client certificate: set KES_CLIENT_KEY")
    if key_file and not cert_file:
        raise ClientSetupError("no certificate file for the private key: set KES_CLIENT_CERT")


def _parse_api_key(text: str, source: str) -> APIKey:
    try:
        return APIKey.parse(text)
    except ValueError as exc:
        raise ClientSetupError(f"{source}: {exc}") from None
