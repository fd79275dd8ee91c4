"""The async mTLS client of the KES API, used by the ``aiokes`` CLI, the benchmark and the tests.

:mod:`~aiokes.client.client` holds :class:`Client`; beside it, the parts it is made of:
``env`` (settings from ``KES_*`` variables), ``tls`` (the client's SSL context), ``wire``
(request and response bodies) and ``errors`` (error responses and transport failures).
"""

from aiokes.client.client import DEK, Client, client_from_env, normalize_endpoint
from aiokes.client.tls import KeyPassword, client_ssl_context

__all__ = [
    "DEK",
    "Client",
    "KeyPassword",
    "client_from_env",
    "client_ssl_context",
    "normalize_endpoint",
]
