"""The Azure Key Vault keystore, interchangeable with KES's ``azure`` keystore.

``settings`` holds every setting (no SDK); ``keystore`` is the keystore itself; ``client``
builds the SDK client, credential and session; ``errors`` turns SDK failures into keystore
errors; ``versions`` decides which secret version is the key; ``locks`` serializes creates
of one name within a process.

The Azure SDK is an optional extra (``aiokes[azure]``), so this package imports none of it
until the keystore class is first asked for (PEP 562 ``__getattr__``): a server that runs
the fs keystore never needs the SDK installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from aiokes.keystore.azure.settings import AzureKeyVaultSettings

if TYPE_CHECKING:
    from aiokes.keystore.azure.keystore import AzureKeyVaultKeystore

__all__ = ["AzureKeyVaultKeystore", "AzureKeyVaultSettings"]

# Public name -> the submodule that defines it and imports the Azure SDK.
_NEEDS_SDK = {"AzureKeyVaultKeystore": "aiokes.keystore.azure.keystore"}


def __getattr__(name: str) -> object:
    if name not in _NEEDS_SDK:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_NEEDS_SDK[name]), name)
