"""The read-only policy and identity routes (spec §2.14, §2.15): policies from the config
file, identities (the admin always listed), and self-describe in the flat layout every client
expects."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.api.helpers import Reply, json_body, send
from tests.conftest import RunningServer, StartServer

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
MY_APP_ALLOW: dict[str, dict[str, str]] = {
    "/v1/key/create/my-key*": {},
    "/v1/key/generate/my-key*": {},
    "/v1/key/decrypt/my-key*": {},
    "/v1/key/describe/my-key*": {},
}
MY_APP_DENY: dict[str, dict[str, str]] = {"/v1/key/generate/my-key-denied*": {}}


def _time(reply: Reply) -> str:
    created_at: str = reply.json()["created_at"]
    assert RFC3339.fullmatch(created_at), created_at
    return created_at


# --- policies --------------------------------------------------------------------------------


async def test_policy_describe_is_byte_exact(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/policy/describe/my-app")
    expected = {"name": "my-app", "created_at": _time(reply), "created_by": server.admin.identity}
    assert reply.body == json_body(expected)


async def test_policy_read_lists_rules_with_empty_objects(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/policy/read/my-app")
    document = reply.json()
    assert list(document) == ["name", "allow", "deny", "created_at", "created_by"]
    assert document == {
        "name": "my-app",
        "allow": MY_APP_ALLOW,
        "deny": MY_APP_DENY,
        "created_at": _time(reply),
        "created_by": server.admin.identity,
    }


async def test_policy_read_is_byte_exact(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/policy/read/my-app")
    expected = {
        "name": "my-app",
        "allow": dict(sorted(MY_APP_ALLOW.items())),
        "deny": MY_APP_DENY,
        "created_at": _time(reply),
        "created_by": server.admin.identity,
    }
    assert reply.body == json_body(expected)


async def test_policy_without_deny_omits_it(start_server: StartServer) -> None:
    server = await start_server(
        policy=textwrap.dedent(
            """\
            policy:
              reader:
                allow:
                - /v1/status
            """
        )
    )
    document = (await send(server, "GET", "/v1/policy/read/reader")).json()
    assert document["allow"] == {"/v1/status": {}}
    assert "deny" not in document


SEVERAL_POLICIES = textwrap.dedent(
    """\
    policy:
      zeta:
        allow: [/v1/status]
      alpha-2:
        allow: [/v1/status]
      alpha-1:
        allow: [/v1/status]
        identities: [{app}]
      beta:
        allow: [/v1/status]
    """
)


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("", ["alpha-1", "alpha-2", "beta", "zeta"]),
        ("*", ["alpha-1", "alpha-2", "beta", "zeta"]),
        ("alpha", ["alpha-1", "alpha-2"]),
        ("alpha*", ["alpha-1", "alpha-2"]),
        ("alpha-2", ["alpha-2"]),
        ("gamma", []),
    ],
)
async def test_policy_list(start_server: StartServer, pattern: str, names: list[str]) -> None:
    server = await start_server(policy=SEVERAL_POLICIES)
    reply = await send(server, "GET", f"/v1/policy/list/{pattern}")
    assert reply.body == json_body({"names": names, "continue_at": ""})


# --- identities ------------------------------------------------------------------------------


async def test_identity_describe_admin_and_policy_member(server: RunningServer) -> None:
    admin = await send(server, "GET", f"/v1/identity/describe/{server.admin.identity}")
    started = _time(admin)
    assert admin.body == json_body({"admin": True, "created_at": started})
    app = await send(server, "GET", f"/v1/identity/describe/{server.app.identity}")
    assert app.body == json_body(
        {"policy": "my-app", "created_at": started, "created_by": server.admin.identity}
    )
    policy = await send(server, "GET", "/v1/policy/describe/my-app")
    assert _time(policy) == started  # everything from the config dates from the start


async def test_identity_list_always_includes_the_admin(server: RunningServer) -> None:
    everyone = sorted([server.admin.identity, server.app.identity])
    for pattern in ("", "*"):
        reply = await send(server, "GET", f"/v1/identity/list/{pattern}")
        assert reply.body == json_body({"identities": everyone, "continue_at": ""})
    prefix = server.admin.identity[:10]
    only_admin = (await send(server, "GET", f"/v1/identity/list/{prefix}*")).json()
    assert server.admin.identity in only_admin["identities"]
    assert server.stranger.identity not in only_admin["identities"]
    none = await send(server, "GET", "/v1/identity/list/nobody")
    assert none.body == json_body({"identities": [], "continue_at": ""})


async def test_self_describe_of_the_admin_is_byte_exact(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/identity/self/describe")
    expected = {"identity": server.admin.identity, "admin": True, "created_at": _time(reply)}
    assert reply.body == json_body(expected)


async def test_self_describe_of_a_policy_member_is_flat(server: RunningServer) -> None:
    """Every client expects LEGACY's flat layout (HEAD nests the policy and answers 404)."""
    reply = await send(server, "GET", "/v1/identity/self/describe", who=server.app)
    assert reply.status == 200
    assert reply.json() == {
        "identity": server.app.identity,
        "admin": False,
        "created_at": _time(reply),
        "created_by": server.admin.identity,
        "policy": "my-app",
        "allow": MY_APP_ALLOW,
        "deny": MY_APP_DENY,
    }


async def test_self_describe_of_an_unknown_identity_is_404(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/identity/self/describe", who=server.stranger)
    assert reply.is_error(404, "identity does not exist"), reply
