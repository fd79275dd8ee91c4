"""aiokes: a KES-compatible key encryption service on uvloop and httptools (llhttp).

The supported library surface is what this module exports; everything else may change.
"""

from aiokes.__about__ import __version__
from aiokes.client import DEK, Client, client_from_env
from aiokes.config import ServerConfig, load_config
from aiokes.errors import (
    AiokesError,
    APIError,
    ConfigError,
    DecryptError,
    KeyExists,
    KeyNotFound,
    KeystoreError,
    KeystoreUnreachable,
    NotAllowed,
    ServerUnreachable,
)
from aiokes.identity import APIKey
from aiokes.keystore import Keystore
from aiokes.server import Server

__all__ = [
    "DEK",
    "APIError",
    "APIKey",
    "AiokesError",
    "Client",
    "ConfigError",
    "DecryptError",
    "KeyExists",
    "KeyNotFound",
    "Keystore",
    "KeystoreError",
    "KeystoreUnreachable",
    "NotAllowed",
    "Server",
    "ServerConfig",
    "ServerUnreachable",
    "__version__",
    "client_from_env",
    "load_config",
]
