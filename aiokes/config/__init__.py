"""The KES server config file: YAML → validated, frozen :class:`ServerConfig` (spec §6).

Every problem is a :class:`~aiokes.errors.ConfigError` naming the file, the line and the key,
e.g. ``config.yml:12: config 'tls.auth': invalid value 'yes': expected 'on' or 'off'``.
The keys, their defaults and what differs from KES are listed in ``docs/config.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiokes._go.duration import parse_duration
from aiokes.config._build import build_config
from aiokes.config._values import parse_log_level
from aiokes.config._yaml import read_yaml
from aiokes.config.address import ListenAddress, parse_listen_address
from aiokes.config.schema import (
    ROUTE_PATHS,
    APIRouteConfig,
    AzureKeyVaultConfig,
    FSKeystoreConfig,
    KeystoreConfig,
    LogConfig,
    MemoryKeystoreConfig,
    MirrorKeystoreConfig,
    PolicyConfig,
    ServerConfig,
    TLSConfig,
)
from aiokes.errors import ConfigError

__all__ = [
    "ROUTE_PATHS",
    "APIRouteConfig",
    "AzureKeyVaultConfig",
    "FSKeystoreConfig",
    "KeystoreConfig",
    "ListenAddress",
    "LogConfig",
    "MemoryKeystoreConfig",
    "MirrorKeystoreConfig",
    "PolicyConfig",
    "ServerConfig",
    "TLSConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen_address",
    "parse_log_level",
]


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Read and validate the config file at ``path``.

    ``${VAR}`` references are resolved from ``environ`` (default: the process environment).
    """
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file: {exc.strerror or exc}", file=file
        ) from None
    except UnicodeDecodeError:
        raise ConfigError("the config file is not UTF-8 text", file=file) from None
    return parse_config(text, file=file, environ=environ)


def parse_config(
    text: str, *, file: str = "<config>", environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Validate config file ``text``; ``file`` names it in errors and in the result."""
    return build_config(
        read_yaml(text, file=file), environ=os.environ if environ is None else environ
    )
