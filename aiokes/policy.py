"""Authorisation with KES's (E4+) semantics: the admin bypasses everything; every other identity
is assigned to at most one policy, whose deny patterns are checked before its allow patterns
against the full URL path.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokes.errors import NotAllowed

__all__ = ["Authorizer", "Policy", "match"]

# Per identity, the decisions already taken; bounded so that a client probing many distinct
# paths cannot grow memory without limit. A decision depends only on (policy, path), and the
# whole Authorizer is replaced on reload, so cached decisions never go stale.
_DECISION_CACHE_SIZE = 4096


def match(pattern: str, path: str) -> bool:
    """A pattern ending in ``*`` matches every path it prefixes; any other pattern must equal
    the path. ``*`` elsewhere is literal, and the empty pattern matches nothing."""
    if not pattern:
        return False
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    created_at: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )
    created_by: str = ""

    def allows(self, path: str) -> bool:
        if any(match(pattern, path) for pattern in self.deny):
            return False
        return any(match(pattern, path) for pattern in self.allow)


class Authorizer:
    """Answers "may this identity call this path?" for one configuration snapshot."""

    def __init__(
        self, admin: str, policies: Iterable[Policy], assignments: Mapping[str, str]
    ) -> None:
        self.admin = admin
        self.policies: dict[str, Policy] = {policy.name: policy for policy in policies}
        # identity -> policy name
        self.assignments: dict[str, str] = dict(assignments)
        self._decisions: dict[tuple[str, str], bool] = {}

    def policy_of(self, identity: str) -> Policy | None:
        name = self.assignments.get(identity)
        return self.policies.get(name) if name is not None else None

    def verify(self, identity: str, path: str) -> None:
        """Raise :class:`NotAllowed` unless ``identity`` may request ``path``."""
        if identity == self.admin:
            return
        key = (identity, path)
        allowed = self._decisions.get(key)
        if allowed is None:
            policy = self.policy_of(identity)
            allowed = policy is not None and policy.allows(path)
            if len(self._decisions) >= _DECISION_CACHE_SIZE:
                self._decisions.clear()
            self._decisions[key] = allowed
        if not allowed:
            raise NotAllowed()
