"""The config file of the operator tutorial (shared/docs/operator-tutorial.md §3), for every
test that follows the tutorial: the CLI one, the process one and the Azure one."""

from __future__ import annotations

TUTORIAL_CONFIG = """\
address: 0.0.0.0:7373
admin:
  identity: disabled
tls:
  key: private.key
  cert: public.crt
policy:
  my-app:
    allow:
    - /v1/key/create/my-key*
    - /v1/key/generate/my-key*
    - /v1/key/decrypt/my-key*
    identities:
    - {client_identity}
"""

FS_KEYSTORE = """\
keystore:
  fs:
    path: ./keys
"""


def tutorial_config(client_identity: str, keystore: str = FS_KEYSTORE) -> str:
    """The tutorial's file for ``client_identity``, with ``keystore`` (YAML) as its keystore."""
    return TUTORIAL_CONFIG.format(client_identity=client_identity) + keystore
