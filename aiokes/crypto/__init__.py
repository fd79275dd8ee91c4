"""KES's cryptography, byte for byte: master keys, ciphertexts and key records.

* :class:`SecretKey` seals in KES's current raw format and opens every format KES ever wrote.
* :class:`KeyVersion` is a stored master key; :func:`parse_key_version` reads records of every
  KES era, :func:`encode_key_version` writes the current one.
* :func:`new_data_key` draws DEKs, :func:`key_id` is the legacy key id.

Nothing here knows about HTTP or keystores; failures are :class:`~aiokes.errors.DecryptError`,
:class:`~aiokes.errors.InvalidKeyRecord` and :class:`~aiokes.errors.HMACNotSupported`.
"""

from __future__ import annotations

from aiokes.crypto.cipher import Cipher, parse_cipher
from aiokes.crypto.record import (
    KeyVersion,
    encode_key_version,
    generate_key_version,
    parse_key_version,
)
from aiokes.crypto.secret_key import SecretKey, key_id, new_data_key

__all__ = [
    "Cipher",
    "KeyVersion",
    "SecretKey",
    "encode_key_version",
    "generate_key_version",
    "key_id",
    "new_data_key",
    "parse_cipher",
    "parse_key_version",
]
