"""Every setting of the Azure Key Vault keystore: its one field list, defaults and checks.

The config file's ``keystore.azure.keyvault`` section is parsed into this type, and the
keystore takes it whole, so a setting is added in one place. It imports no Azure SDK (the
``azure`` extra is optional) and does no I/O: a CA file that cannot be read is found when
the keystore connects.

An invalid value raises :class:`~aiokes.errors.ConfigError` whose ``key`` is the field's
name; the config layer re-raises it at the line of the matching key of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiokes.errors import ConfigError

__all__ = ["AzureKeyVaultSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AzureKeyVaultSettings:
    """What the keystore needs to reach one vault, validated on construction.

    Authentication: client credentials when ``client_secret`` is set, the user-assigned
    managed identity ``managed_identity_client_id`` when that is set, else Azure's
    DefaultAzureCredential chain. ``api_version`` to ``status_timeout`` are aiokes
    extensions (``docs/config.md``).
    """

    endpoint: str
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    managed_identity_client_id: str = ""
    api_version: str = "7.5"
    timeout: float = 5.0  # seconds per HTTP request to Key Vault
    max_retries: int = 4
    retry_max_delay: float = 8.0  # seconds, the cap of the exponential back-off
    authority_host: str = ""  # "" = Azure public cloud (login.microsoftonline.com)
    ca_file: str = ""  # extra CA bundle: private endpoints, emulators
    # Seconds a deleted name stays reserved (its soft-deleted secret is the tombstone);
    # 0 = none. Set from the cache expiry by the config (aiokes.keystore._tombstone).
    reuse_wait: float = 0.0
    operation_timeout: float = 10.0  # seconds per keystore call, retries included (< routes')
    status_timeout: float = 0.8  # seconds for the reachability probe of /v1/status, /v1/ready

    def __post_init__(self) -> None:
        # In the order the config file's keys were checked before, so the first error reported
        # for a file with several stays the same.
        self._check_authentication()
        _check_https_url(
            "endpoint",
            self.endpoint,
            f"'{self.endpoint}' is not an https URL (e.g. https://my-vault.vault.azure.net)",
        )
        _check_positive("timeout", self.timeout)
        _check_not_negative("max_retries", self.max_retries)
        _check_not_negative("retry_max_delay", self.retry_max_delay)
        if self.authority_host:  # a bare host, as AzureAuthorityHosts spells them, is fine
            authority = self.authority_host
            _check_https_url(
                "authority_host",
                authority if "://" in authority else f"https://{authority}",
                f"'{authority}' must be an https URL",
            )
        _check_not_negative("reuse_wait", self.reuse_wait)
        _check_positive("operation_timeout", self.operation_timeout)
        _check_positive("status_timeout", self.status_timeout)

    @property
    def vault(self) -> str:
        """The vault's host (and port), the name used in error messages."""
        return urlsplit(self.endpoint).netloc

    def _check_authentication(self) -> None:
        credentials = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        missing = [name for name, value in credentials.items() if not value]
        if missing and len(missing) < len(credentials):
            raise ConfigError(
                "client credentials need all of tenant_id, client_id and client_secret",
                key=missing[0],
            )
        if not missing and self.managed_identity_client_id:
            raise ConfigError(
                "more than one authentication method specified "
                "(use either 'credentials' or 'managed_identity')",
                key="managed_identity_client_id",
            )


def _check_https_url(setting: str, url: str, problem: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(problem, key=setting)


def _check_positive(setting: str, value: float) -> None:
    if value <= 0:
        raise ConfigError("must be greater than 0", key=setting)


def _check_not_negative(setting: str, value: float) -> None:
    if value < 0:
        raise ConfigError("must not be negative", key=setting)
