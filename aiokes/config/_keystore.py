"""The ``keystore:`` section → one keystore config (spec §6.2, §7).

aiokes implements the ``fs`` and ``azure`` backends. The other KES backends are recognised by
name so that a KES config using one of them fails with a clear message instead of "no
keystore specified".

The Azure keys live under ``keystore.azure.keyvault``. aiokes adds some (KES ignores them, so
a config using them still loads in KES), all ``${VAR}``-substitutable; ``docs/config.md``
lists them with their defaults. Their fields, defaults and checks are those of
:class:`~aiokes.keystore.azure.AzureKeyVaultSettings`; this module only reads them and
reports a check's failure at the key's line.

The ``mirror`` keystore (aiokes only; KES fails on it) holds two keystore sections,
``primary`` and ``secondary``, each an ``fs`` or ``azure`` block as above, and an optional
``check_interval`` (duration, default ``5m``, ``0`` = only at start-up).

Every backend gets the tombstone wait derived from the cache expiry (``reuse_wait``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from aiokes.config._section import Section
from aiokes.config.schema import (
    DEFAULT_MIRROR_CHECK_INTERVAL,
    AzureKeyVaultConfig,
    FSKeystoreConfig,
    KeystoreConfig,
    MirrorKeystoreConfig,
)
from aiokes.errors import ConfigError

__all__ = ["build_keystore"]

_SUPPORTED = ("fs", "azure", "mirror")
# KES's other keystores (kesconf/config.go); "kes" and "encryptedfs" are parsed but unused there.
_UNSUPPORTED = ("vault", "fortanix", "gemalto", "gcp", "aws", "entrust", "kes", "encryptedfs")
_SUPPORTED_TEXT = ", ".join(_SUPPORTED)
_AZURE_DEFAULTS = {field.name: field.default for field in dataclasses.fields(AzureKeyVaultConfig)}
# The file's key for each Azure setting not named as in the file.
_AZURE_KEYS = {
    "tenant_id": "credentials",
    "client_id": "credentials",
    "client_secret": "credentials",
    "managed_identity_client_id": "managed_identity",
    "ca_file": "ca",
}


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
    """Read ``keyvault``; the checks of its values are the settings' own, raised at their line."""
    if azure.get("keyvault") is None:
        raise azure.error("keyvault", "the 'keyvault' section is required for an azure keystore")
    vault = azure.section("keyvault")
    tenant_id, client_id, client_secret = _client_credentials(vault)
    managed_identity_client_id = _managed_identity(vault)
    # Every value is read (and parsed) here, a parse error naming its own key's line; the
    # settings check the values when built, below.
    build = functools.partial(
        AzureKeyVaultConfig,
        endpoint=vault.required_string("endpoint", "the Key Vault endpoint").strip(),
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=client_secret,
        managed_identity_client_id=managed_identity_client_id,
        api_version=vault.string("api_version", _default("api_version")),
        timeout=vault.duration("timeout", _default("timeout")),
        max_retries=vault.integer("max_retries", _default("max_retries"), minimum=0),
        retry_max_delay=vault.duration("retry_max_delay", _default("retry_max_delay")),
        authority_host=vault.string("authority_host").strip(),
        ca_file=vault.string("ca"),
        reuse_wait=reuse_wait,
        operation_timeout=vault.duration("operation_timeout", _default("operation_timeout")),
        status_timeout=vault.duration("status_timeout", _default("status_timeout")),
    )
    try:
        return build()
    except ConfigError as exc:  # exc.key is the setting's name: point at the file's key
        raise vault.error(_AZURE_KEYS.get(exc.key, exc.key), exc.detail) from None


def _default(setting: str) -> Any:
    """The settings' own default, for a key the file leaves out."""
    return _AZURE_DEFAULTS[setting]


def _client_credentials(vault: Section) -> tuple[str, str, str]:
    """Tenant, client and secret of the ``credentials`` block, all required if it is there."""
    if not _present(vault, "credentials"):
        return "", "", ""
    secret = vault.section("credentials")
    return (
        secret.required_string("tenant_id", "the tenant (directory) ID"),
        secret.required_string("client_id", "the client (application) ID"),
        secret.required_string("client_secret", "the client secret"),
    )


def _managed_identity(vault: Section) -> str:
    """The client ID of the ``managed_identity`` block, required if it is there."""
    if not _present(vault, "managed_identity"):
        return ""
    managed = vault.section("managed_identity")
    return managed.required_string("client_id", "the managed identity's client ID")


def _present(section: Section, name: str) -> bool:
    # As in KES, "credentials:" with nothing under it is the same as no block at all.
    node = section.get(name)
    return node is not None and node.kind != "null"
