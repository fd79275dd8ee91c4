"""A fake Azure Key Vault (secrets data plane) plus token endpoint, over HTTPS on 127.0.0.1:
the ``aiokes-azure`` bench target runs against it (``python -m bench.fakevault DIRECTORY``),
and the test suite's Azure keystore tests drive it in-process. :mod:`.vault` serves the HTTP
API, :mod:`.store` holds the secrets and the faults, :mod:`.responses` shapes the answers.
It lives in ``bench`` rather than ``tests`` because the benchmark needs it and must not
import the tests; the tests import it from here."""

from __future__ import annotations

from bench.fakevault.store import Faults
from bench.fakevault.vault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "FakeVault", "Faults"]
