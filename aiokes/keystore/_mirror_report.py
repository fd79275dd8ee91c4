"""What the mirror keystore knows about how far its two sides are in step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["MirrorReport"]


@dataclass(frozen=True, slots=True)
class MirrorReport:
    """How far the two sides are in step, as of the last check plus what happened since."""

    checked_at: datetime | None = None
    primary_reachable: bool = True
    secondary_reachable: bool = True
    only_primary: frozenset[str] = field(default_factory=frozenset)
    only_secondary: frozenset[str] = field(default_factory=frozenset)
    repaired: int = 0  # keys copied or deletes finished by checks so far
    compared: bool = False  # the last check listed both sides (else the sets are unknown)

    @property
    def in_step(self) -> bool:
        return (
            self.compared
            and self.primary_reachable
            and self.secondary_reachable
            and not self.only_primary
            and not self.only_secondary
        )

    def as_status(self) -> dict[str, object]:
        """The ``mirror`` field of ``/v1/status`` (aiokes only; KES clients ignore it)."""
        checked = self.checked_at.isoformat(timespec="seconds") if self.checked_at else ""
        return {
            "in_step": self.in_step,
            "primary_unreachable": not self.primary_reachable,
            "secondary_unreachable": not self.secondary_reachable,
            "keys_only_on_primary": len(self.only_primary),
            "keys_only_on_secondary": len(self.only_secondary),
            "last_check": checked.replace("+00:00", "Z"),
            "repaired": self.repaired,
        }

    def as_metrics(self) -> str:
        """Prometheus text lines for ``/v1/metrics``."""
        return (
            "# HELP aiokes_mirror_in_step 1 if both keystores of the mirror are reachable "
            "and hold the same key names.\n"
            "# TYPE aiokes_mirror_in_step gauge\n"
            f"aiokes_mirror_in_step {int(self.in_step)}\n"
            "# HELP aiokes_mirror_reachable 1 if that side of the mirror answered last time.\n"
            "# TYPE aiokes_mirror_reachable gauge\n"
            f'aiokes_mirror_reachable{{side="primary"}} {int(self.primary_reachable)}\n'
            f'aiokes_mirror_reachable{{side="secondary"}} {int(self.secondary_reachable)}\n'
            "# HELP aiokes_mirror_keys_out_of_step Key names held by one side only.\n"
            "# TYPE aiokes_mirror_keys_out_of_step gauge\n"
            f'aiokes_mirror_keys_out_of_step{{only_on="primary"}} {len(self.only_primary)}\n'
            f'aiokes_mirror_keys_out_of_step{{only_on="secondary"}} {len(self.only_secondary)}\n'
        )

    def describe(self) -> str:
        """One line for the error log."""
        parts = [] if self.compared else ["not compared"]
        if not self.primary_reachable:
            parts.append("primary unreachable")
        if not self.secondary_reachable:
            parts.append("secondary unreachable")
        if self.only_primary:
            parts.append(f"{len(self.only_primary)} key(s) only on the primary")
        if self.only_secondary:
            parts.append(f"{len(self.only_secondary)} key(s) only on the secondary")
        return ", ".join(parts)
