"""The validated server configuration: frozen dataclasses, one per section of the file.

Everything here is already checked and typed (durations in seconds, log levels as Python
:mod:`logging` levels); :func:`aiokes.config.load_config` builds these from the YAML file.
The keystore sections know how to :meth:`connect` to their backend, importing it lazily so
that the Azure SDK stays an optional extra.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

from aiokes.api.paths import ROUTE_PATHS
from aiokes.cache.settings import CacheSettings
from aiokes.config.address import DEFAULT_ADDRESS, ListenAddress
from aiokes.keystore.azure.settings import AzureKeyVaultSettings

if TYPE_CHECKING:
    from aiokes.keystore import Keystore

__all__ = [
    "DEFAULT_CRYPTO_INLINE_LIMIT",
    "DEFAULT_MIRROR_CHECK_INTERVAL",
    "DEFAULT_PROXY_HEADER",
    "ROUTE_PATHS",
    "APIRouteConfig",
    "AzureKeyVaultConfig",
    "FSKeystoreConfig",
    "KeystoreConfig",
    "LogConfig",
    "MemoryKeystoreConfig",
    "MirrorKeystoreConfig",
    "PolicyConfig",
    "ServerConfig",
    "TLSConfig",
]

DEFAULT_CRYPTO_INLINE_LIMIT = 256 * 1024  # measured: bench/RESULTS.md section 7
DEFAULT_PROXY_HEADER = "X-Tls-Client-Cert"
DEFAULT_MIRROR_CHECK_INTERVAL = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """``tls:`` — the server certificate and how client certificates are checked."""

    key_file: str
    cert_file: str
    password: str = field(default="", repr=False)  # decrypts an encrypted PEM private key
    verify_client_certs: bool = False  # tls.auth: on
    ca_path: str = ""  # file or directory of extra CAs for client verification
    proxy_identities: tuple[str, ...] = ()
    proxy_header: str = DEFAULT_PROXY_HEADER


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyConfig:
    """One entry of ``policy:``: path patterns and the identities the policy applies to."""

    name: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class APIRouteConfig:
    """One entry of ``api:``; ``timeout=None`` keeps the route's default timeout."""

    skip_auth: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """``log:`` — Python logging levels (``None`` = off) and optional log files."""

    error_level: int | None = logging.INFO
    audit_level: int | None = logging.INFO
    audit_file: str = ""  # "" = standard output
    error_file: str = ""  # "" = standard error


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryKeystoreConfig:
    """The in-memory keystore of ``aiokes server --dev``; not reachable from a config file."""

    async def connect(self) -> Keystore:
        from aiokes.keystore.memory import MemoryKeystore

        return MemoryKeystore()

    def describe(self) -> str:
        return "In-memory"


@dataclass(frozen=True, slots=True, kw_only=True)
class FSKeystoreConfig:
    """``keystore.fs`` — one file per key in ``path``, compatible with KES's fs keystore."""

    path: str
    # Seconds a deleted name stays reserved (tombstones); 0 = no tombstones. Set from the
    # cache expiry by the config builder (aiokes.keystore._tombstone.reuse_wait).
    reuse_wait: float = 0.0

    async def connect(self) -> Keystore:
        from aiokes.keystore.fs import FSKeystore

        keystore = FSKeystore(self.path, reuse_wait=self.reuse_wait)
        await keystore.open()
        return keystore

    def describe(self) -> str:
        return f"Filesystem: {self.path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AzureKeyVaultConfig(AzureKeyVaultSettings):
    """``keystore.azure.keyvault`` — secrets in an Azure Key Vault.

    The fields, defaults and checks are the keystore's own (:mod:`aiokes.keystore.azure.settings`,
    no Azure SDK); this adds only the connecting, which hands them to the keystore whole.
    """

    async def connect(self) -> Keystore:
        from aiokes.keystore.azure import AzureKeyVaultKeystore

        keystore = AzureKeyVaultKeystore(self)
        await keystore.open()
        return keystore

    def describe(self) -> str:
        return f"Azure KeyVault: {self.endpoint}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorKeystoreConfig:
    """``keystore.mirror`` (aiokes only) — every key in two keystores (``keystore/mirror.py``)."""

    primary: FSKeystoreConfig | AzureKeyVaultConfig
    secondary: FSKeystoreConfig | AzureKeyVaultConfig
    check_interval: float = (
        DEFAULT_MIRROR_CHECK_INTERVAL  # seconds between compare-and-repair runs; 0 = start-up only
    )

    async def connect(self) -> Keystore:
        from aiokes.keystore.mirror import MirrorKeystore

        primary = await self.primary.connect()
        try:
            secondary = await self.secondary.connect()
        except BaseException:
            await primary.close()
            raise
        keystore = MirrorKeystore(primary, secondary, check_interval=self.check_interval)
        await keystore.open()
        return keystore

    def describe(self) -> str:
        return f"Mirror: {self.primary.describe()} + {self.secondary.describe()}"


KeystoreConfig: TypeAlias = (
    MemoryKeystoreConfig | FSKeystoreConfig | AzureKeyVaultConfig | MirrorKeystoreConfig
)


def _no_routes() -> Mapping[str, APIRouteConfig]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """A whole server config file, validated."""

    file: str  # where it was read from, for SIGHUP reloads and messages
    address: ListenAddress = DEFAULT_ADDRESS
    admin_identity: str  # any value; one that is not 64 hex characters disables the admin
    tls: TLSConfig
    policies: tuple[PolicyConfig, ...] = ()
    cache: CacheSettings = field(default_factory=CacheSettings)  # the ``cache:`` section
    api: Mapping[str, APIRouteConfig] = field(default_factory=_no_routes)  # read-only
    log: LogConfig = LogConfig()
    keys: tuple[str, ...] = ()  # key names created at start-up if missing
    keystore: KeystoreConfig
    # Payloads up to this many bytes are encrypted/decrypted on the event loop: sealing a DEK
    # inline costs ~1.5 µs, a thread-pool hop 20-190 µs. Larger ones go to a thread, where the
    # library releases the GIL and the work outweighs the hop (bench/RESULTS.md).
    crypto_inline_limit: int = DEFAULT_CRYPTO_INLINE_LIMIT
