"""The ``keystore:`` section → one keystore config (spec §6.2, §7).

aiokes implements the ``fs`` and ``azure`` backends. The other KES backends are recognised by
name so that a KES config using one of them fails with a clear message instead of "no
keystore specified".

Azure extension keys (aiokes only; KES ignores them, so a config using them still loads in
KES), all under ``keystore.azure.keyvault`` and all ``${VAR}``-substitutable:

* ``api_version`` (string, default ``7.5``): the Key Vault REST API version;
* ``timeout`` (duration, default ``5s``, > 0): the limit for one HTTP request;
* ``operation_timeout`` (duration, default ``10s``, > 0): the limit for one keystore call,
  retries included; a vault that does not answer in time is a 502, as any keystore failure;
* ``status_timeout`` (duration, default ``800ms``, > 0): the limit for the status probe;
* ``max_retries`` (int, default 4): retries of throttled / failed requests;
* ``retry_max_delay`` (duration, default ``8s``): the cap of the back-off between retries;
* ``authority_host`` (https URL or host, default Azure public cloud): the Entra ID authority,
  for sovereign clouds;
* ``ca`` (file): an extra CA bundle for the vault's TLS certificate (private endpoints,
  emulators).

The ``mirror`` keystore (aiokes only; KES fails on it) holds two keystore sections,
``primary`` and ``secondary``, each an ``fs`` or ``azure`` block as above, and an optional
``check_interval`` (duration, default ``5m``, ``0`` = only at start-up).

Every backend gets the tombstone wait derived from the cache expiry (``reuse_wait``).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from aiokes.config._section import Section
from aiokes.config.schema import (
    DEFAULT_MIRROR_CHECK_INTERVAL,
    AzureKeyVaultConfig,
    FSKeystoreConfig,
    KeystoreConfig,
    MirrorKeystoreConfig,
)

__all__ = ["build_keystore"]

_SUPPORTED = ("fs", "azure", "mirror")
# KES's other keystores (kesconf/config.go); "kes" and "encryptedfs" are parsed but unused there.
_UNSUPPORTED = ("vault", "fortanix", "gemalto", "gcp", "aws", "entrust", "kes", "encryptedfs")
_SUPPORTED_TEXT = ", ".join(_SUPPORTED)
_AZURE_DEFAULTS = AzureKeyVaultConfig(endpoint="")


def build_keystore(keystore: Section, *, reuse_wait: float = 0.0) -> KeystoreConfig:
    """The one keystore configured under ``keystore:``."""
    name = _chosen(keystore)
    if name == "mirror":
        return _mirror(keystore.section("mirror"), reuse_wait)
    return _single(keystore, reuse_wait)


def _mirror(mirror: Section, reuse_wait: float) -> MirrorKeystoreConfig:
    sides = []
    for side in ("primary", "secondary"):
        if mirror.get(side) is None:
            raise mirror.error(side, f"the '{side}' keystore of the mirror is required")
        section = mirror.section(side)
        if "mirror" in section:
            raise section.error("mirror", "a mirror cannot contain another mirror")
        sides.append(_single(section, reuse_wait))
    interval = mirror.duration("check_interval", DEFAULT_MIRROR_CHECK_INTERVAL)
    if interval < 0:
        raise mirror.error("check_interval", "must not be negative")
    return MirrorKeystoreConfig(primary=sides[0], secondary=sides[1], check_interval=interval)


def _single(keystore: Section, reuse_wait: float) -> FSKeystoreConfig | AzureKeyVaultConfig:
    if _chosen(keystore) == "fs":
        path = keystore.section("fs").required_string("path", "the key directory")
        return FSKeystoreConfig(path=path, reuse_wait=reuse_wait)
    return _azure(keystore.section("azure"), reuse_wait)


def _chosen(keystore: Section) -> str:
    names = [name for name in (*_SUPPORTED, *_UNSUPPORTED) if name in keystore]
    if not names:
        raise keystore.node.error(f"no keystore specified (supported: {_SUPPORTED_TEXT})")
    if len(names) > 1:
        listed = " and ".join(f"'{name}'" for name in names)
        raise keystore.error(
            names[1], f"more than one keystore specified ({listed}); aiokes uses exactly one"
        )
    name = names[0]
    if name in _UNSUPPORTED:
        raise keystore.error(
            name, f"keystore '{name}' is not supported by aiokes (supported: {_SUPPORTED_TEXT})"
        )
    return name


def _azure(azure: Section, reuse_wait: float) -> AzureKeyVaultConfig:
    if azure.get("keyvault") is None:
        raise azure.error("keyvault", "the 'keyvault' section is required for an azure keystore")
    vault = azure.section("keyvault")
    auth = _authentication(vault)
    return AzureKeyVaultConfig(
        endpoint=_endpoint(vault),
        tenant_id=auth.tenant_id,
        client_id=auth.client_id,
        client_secret=auth.client_secret,
        managed_identity_client_id=auth.managed_identity_client_id,
        api_version=vault.string("api_version", _AZURE_DEFAULTS.api_version),
        timeout=_positive_duration(vault, "timeout", _AZURE_DEFAULTS.timeout),
        max_retries=vault.integer("max_retries", _AZURE_DEFAULTS.max_retries, minimum=0),
        retry_max_delay=vault.duration("retry_max_delay", _AZURE_DEFAULTS.retry_max_delay),
        authority_host=_authority_host(vault),
        ca_file=vault.string("ca"),
        reuse_wait=reuse_wait,
        operation_timeout=_positive_duration(
            vault, "operation_timeout", _AZURE_DEFAULTS.operation_timeout
        ),
        status_timeout=_positive_duration(vault, "status_timeout", _AZURE_DEFAULTS.status_timeout),
    )


def _endpoint(vault: Section) -> str:
    endpoint = vault.required_string("endpoint", "the Key Vault endpoint").strip()
    url = urlsplit(endpoint)
    if url.scheme.lower() != "https" or not url.hostname:
        raise vault.error(
            "endpoint",
            f"'{endpoint}' is not an https URL (e.g. https://my-vault.vault.azure.net)",
        )
    return endpoint


class _Authentication(NamedTuple):
    """The settings of one authentication method; all empty: DefaultAzureCredential."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    managed_identity_client_id: str = ""


def _authentication(vault: Section) -> _Authentication:
    has_secret = _present(vault, "credentials")
    has_managed = _present(vault, "managed_identity")
    if has_secret and has_managed:
        raise vault.error(
            "managed_identity",
            "more than one authentication method specified "
            "(use either 'credentials' or 'managed_identity')",
        )
    if has_secret:
        secret = vault.section("credentials")
        return _Authentication(
            tenant_id=secret.required_string("tenant_id", "the tenant (directory) ID"),
            client_id=secret.required_string("client_id", "the client (application) ID"),
            client_secret=secret.required_string("client_secret", "the client secret"),
        )
    if has_managed:
        managed = vault.section("managed_identity")
        client_id = managed.required_string("client_id", "the managed identity's client ID")
        return _Authentication(managed_identity_client_id=client_id)
    return _Authentication()


def _present(section: Section, name: str) -> bool:
    # As in KES, "credentials:" with nothing under it is the same as no block at all.
    node = section.get(name)
    return node is not None and node.kind != "null"


def _positive_duration(section: Section, name: str, default: float) -> float:
    value = section.duration(name, default)
    if value <= 0:
        raise section.error(name, "must be greater than 0")
    return value


def _authority_host(vault: Section) -> str:
    authority = vault.string("authority_host").strip()
    if "://" in authority and urlsplit(authority).scheme.lower() != "https":
        raise vault.error("authority_host", f"'{authority}' must be an https URL")
    return authority
