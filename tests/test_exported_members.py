"""The public surface: everything public in ``aiokes`` is in ``__all__`` (whose order ruff's
RUF022 keeps sorted)."""

from __future__ import annotations

import aiokes


def test_all_exports_exist_once() -> None:
    assert len(set(aiokes.__all__)) == len(aiokes.__all__)
    for name in aiokes.__all__:
        assert hasattr(aiokes, name), name


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(aiokes).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("aiokes")
    }
    assert public <= set(aiokes.__all__)
