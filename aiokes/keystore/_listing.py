"""KES's listing rule, shared by every backend (``internal/keystore/keystore.go`` ``List``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# KES truncates a page at 1024 names. We return everything in one page while the JSON
# stays well under the 1 MiB a Go client reads (~12 000 names of 80 bytes), because the
# Go client's continuation (reusing continue_at as the next prefix) is broken beyond one page.
LIST_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Page:
    names: list[str] = field(default_factory=list)
    continue_at: str = ""


def paginate(names: Iterable[str], prefix: str, limit: int = -1) -> Page:
    """Sort the names that start with ``prefix`` and cut them into a KES page.

    ``limit <= 0`` means :data:`LIST_LIMIT`. When more names remain, ``continue_at`` is the
    first name not returned.
    """
    if limit <= 0:
        limit = LIST_LIMIT
    matching = sorted(name for name in names if name.startswith(prefix))
    if len(matching) <= limit:
        return Page(matching, "")
    return Page(matching[:limit], matching[limit])
