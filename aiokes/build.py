"""Which build of aiokes runs: the request path compiled by mypyc, or all of it interpreted.

A wheel built with ``AIOKES_COMPILE=1`` (``hatch_build.py`` at the repository root) carries
the modules of :data:`REQUEST_PATH` as extension modules beside their ``.py`` files; Python's
import system prefers the extension. ``hatch_build.py`` reads the list from this file without
importing aiokes, so this module imports nothing but the standard library.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

__all__ = ["REQUEST_PATH", "compiled_modules", "describe"]

# The modules a request passes through, compiled together (mypyc calls across them directly).
REQUEST_PATH = (
    "aiokes._go.base64",
    "aiokes._go.duration",
    "aiokes._go.json",
    "aiokes._go.time",
    "aiokes.api.call",
    "aiokes.api.dispatch",
    "aiokes.api.keys",
    "aiokes.api.routes",
    "aiokes.api.wire",
    "aiokes.audit",
    "aiokes.cache.keycache",
    "aiokes.crypto._prf",
    "aiokes.crypto.ciphertext",
    "aiokes.crypto.secret_key",
    "aiokes.http.connection",
    "aiokes.http.deadline",
    "aiokes.http.listener",
    "aiokes.http.request",
    "aiokes.http.response",
    "aiokes.identity",
    "aiokes.metrics",
    "aiokes.policy",
)
# Not aiokes.tls: its ServerContext subclasses ssl.SSLContext, which mypyc 2.4.1 cannot
# compile (an internal error), and its work is per connection, not per request.


def compiled_modules() -> tuple[str, ...]:
    """The modules of :data:`REQUEST_PATH` that import as compiled extension modules: all of
    them in a compiled build, none in an interpreted one (an editable install included)."""
    return tuple(name for name in REQUEST_PATH if _is_extension(name))


def describe() -> str:
    """One line for the start-up banner and ``aiokes --version``."""
    compiled = compiled_modules()
    if not compiled:
        return "request path: interpreted"
    return f"request path: compiled with mypyc ({len(compiled)} modules)"


def _is_extension(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
