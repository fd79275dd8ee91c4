"""Policy matching with KES's E4+ semantics (minio/kms-go:kes/policy_test.go)."""

from __future__ import annotations

import pytest

from aiokes.errors import NotAllowed
from aiokes.policy import Authorizer, Policy, match


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v1/key/create/my-key", "/v1/key/create/my-key", True),
        ("/v1/key/create/my-key", "/v1/key/create/my-key2", False),
        ("/v1/key/create/my*", "/v1/key/create/my-key", True),
        ("/v1/key/create/my*", "/v1/key/create/m", False),
        ("/v1/key/*", "/v1/key/generate/anything", True),
        ("/v1/key/*/my-key", "/v1/key/generate/my-key", False),  # '*' inside is literal
        ("/v1/key/*/my-key", "/v1/key/*/my-key", True),
        ("*", "/v1/status", True),
        ("", "", False),
        ("", "/v1/status", False),
        ("/v1/status", "/v1/status/", False),
    ],
)
def test_match(pattern: str, path: str, matches: bool) -> None:
    assert match(pattern, path) is matches


def test_deny_wins_over_allow() -> None:
    policy = Policy("p", allow=("/v1/key/create/my*",), deny=("/v1/key/create/my-key*",))
    assert not policy.allows("/v1/key/create/my-key1")
    assert policy.allows("/v1/key/create/my-minio-key")


def test_empty_policy_denies_everything() -> None:
    assert not Policy("p").allows("/v1/status")


def test_authorizer_admin_bypasses_and_strangers_are_refused() -> None:
    policy = Policy("app", allow=("/v1/key/generate/app-*",))
    authorizer = Authorizer("admin-id", [policy], {"app-id": "app"})
    authorizer.verify("admin-id", "/v1/key/delete/anything")
    authorizer.verify("app-id", "/v1/key/generate/app-1")
    with pytest.raises(NotAllowed) as info:
        authorizer.verify("app-id", "/v1/key/delete/app-1")
    assert (info.value.status, info.value.message) == (
        403,
        "not authorized: insufficient permissions",
    )
    with pytest.raises(NotAllowed):
        authorizer.verify("stranger", "/v1/key/generate/app-1")


def test_cached_decisions_stay_per_identity_and_path() -> None:
    policy = Policy("app", allow=("/v1/key/generate/a*",))
    authorizer = Authorizer("admin-id", [policy], {"app-id": "app"})
    for _ in range(3):  # repeated calls are answered from the decision cache, unchanged
        authorizer.verify("app-id", "/v1/key/generate/a1")
        with pytest.raises(NotAllowed):
            authorizer.verify("app-id", "/v1/key/generate/b1")
        with pytest.raises(NotAllowed):
            authorizer.verify("other", "/v1/key/generate/a1")


def test_decision_cache_is_bounded() -> None:
    authorizer = Authorizer("admin-id", [Policy("app", allow=("*",))], {"app-id": "app"})
    for index in range(10_000):
        authorizer.verify("app-id", f"/v1/key/generate/k{index}")
    assert len(authorizer._decisions) <= 4096
