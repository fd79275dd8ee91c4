"""The one place where Azure SDK failures become aiokes keystore errors.

Every message names the vault, the operation, the key and, for an HTTP failure, the status
and the Azure error code (the inner code too when Key Vault sends one), so the error log
says exactly what went wrong. Messages are built from the structured error fields only:
never from request bodies, so a secret value or a bearer token cannot end up in them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from aiokes.errors import KeystoreError, KeystoreUnreachable

__all__ = ["VaultProblem", "describe_http_error", "translate_azure_errors"]

# Azure messages can be long (links, correlation ids); the first part is what matters.
_MAX_DETAIL = 300


class VaultProblem(Exception):
    """Something found in the vault that the keystore refuses to work with.

    Raised with a short description; :func:`translate_azure_errors` turns it into a
    ``KeystoreError`` that names the vault, the operation and the key.
    """


@contextmanager
def translate_azure_errors(vault: str, operation: str, name: str = "") -> Iterator[None]:
    """Re-raise Azure SDK failures inside the block as ``KeystoreError``/``KeystoreUnreachable``.

    Errors the caller already translated (``KeyNotFound``, ``KeystoreError``, ...) pass
    through unchanged, as does cancellation.
    """
    subject = f"azure key vault {vault}: {operation}" + (f" key '{name}'" if name else "")
    try:
        yield
    except VaultProblem as exc:
        raise KeystoreError(f"{subject}: {exc}") from exc.__cause__
    except ClientAuthenticationError as exc:  # before HttpResponseError: it is a subclass
        detail = _first_line(exc.message)
        raise KeystoreError(f"{subject}: authentication failed: {detail}") from exc
    except HttpResponseError as exc:
        raise KeystoreError(f"{subject}: {describe_http_error(exc)}") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:  # connect/DNS/read, timeouts
        kind = type(exc).__name__
        raise KeystoreUnreachable(f"{subject}: vault not reachable ({kind}): {exc}") from exc
    except AzureError as exc:
        raise KeystoreError(f"{subject}: {type(exc).__name__}: {_first_line(exc.message)}") from exc
    except TimeoutError as exc:  # our own per-operation deadline
        raise KeystoreUnreachable(f"{subject}: timed out: {exc}") from exc
    except ValueError as exc:  # e.g. the SDK refusing a challenge from another domain
        raise KeystoreError(f"{subject}: {_first_line(str(exc))}") from exc


def describe_http_error(exc: HttpResponseError) -> str:
    """``HTTP 403 Forbidden/ForbiddenByPolicy: <message>`` from Key Vault's error envelope."""
    error = exc.error
    code = (error.code if error else None) or "-"
    inner = error.innererror.get("code") if error and isinstance(error.innererror, dict) else None
    codes = f"{code}/{inner}" if inner else code
    message = (error.message if error else None) or exc.reason or ""
    return f"HTTP {exc.status_code} {codes}: {_first_line(message)}"


def _first_line(text: object) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."
