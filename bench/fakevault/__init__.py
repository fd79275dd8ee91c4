"""A fake Azure Key Vault (secrets data plane) plus token endpoint, over HTTPS on 127.0.0.1:
the ``aiokes-azure`` bench target runs against it (``python -m bench.fakevault DIRECTORY``),
and the test suite's Azure keystore tests drive it in-process (:mod:`.vault`)."""

from __future__ import annotations

from bench.fakevault.vault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault, Faults, VaultLink

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "FakeVault", "Faults", "VaultLink"]
