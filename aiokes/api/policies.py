"""Handlers of ``/v1/policy/*`` and ``/v1/identity/*``: read-only views of the config."""

from __future__ import annotations

from typing import Any

from aiokes.api.call import Call
from aiokes.api.keys import list_prefix
from aiokes.api.wire import format_time, json_response
from aiokes.errors import APIError, IdentityNotFound, PolicyNotFound
from aiokes.http import Response
from aiokes.identity import valid_name
from aiokes.policy import Policy

__all__ = [
    "describe_identity",
    "describe_policy",
    "describe_self",
    "list_identities",
    "list_policies",
    "read_policy",
]


async def describe_policy(call: Call) -> Response:
    policy = _policy(call)
    return json_response(
        {
            "name": policy.name,
            "created_at": format_time(policy.created_at),
            "created_by": policy.created_by,
        }
    )


async def read_policy(call: Call) -> Response:
    policy = _policy(call)
    reply: dict[str, Any] = {"name": policy.name}
    reply.update(_rules(policy))
    reply["created_at"] = format_time(policy.created_at)
    reply["created_by"] = policy.created_by
    return json_response(reply)


async def list_policies(call: Call) -> Response:
    prefix = list_prefix(call.resource)
    names = sorted(name for name in call.state.authorizer.policies if name.startswith(prefix))
    return json_response({"names": names, "continue_at": ""})


async def describe_identity(call: Call) -> Response:
    identity = call.resource
    if not valid_name(identity):
        raise APIError(
            f"identity '{identity}' is empty, too long or contains invalid characters",
            status=400,
        )
    return json_response(_describe(call, identity))


async def list_identities(call: Call) -> Response:
    prefix = list_prefix(call.resource)
    authorizer = call.state.authorizer
    identities = {authorizer.admin, *authorizer.assignments}
    matching = sorted(identity for identity in identities if identity.startswith(prefix))
    return json_response({"identities": matching, "continue_at": ""})


async def describe_self(call: Call) -> Response:
    """The caller's own identity in the flat layout of kes-go v0.2 and kms-go (HEAD nests the
    policy and looks up the wrong identity; spec §2.15). Clients before kes-go v0.2 expect a
    nested one that cannot share a body with this; docs/compatibility.md says why flat wins."""
    reply: dict[str, Any] = {"identity": call.identity}
    reply.update(_describe(call, call.identity))
    reply.setdefault("admin", False)
    policy = call.state.authorizer.policy_of(call.identity)
    if policy is not None:
        reply.update(_rules(policy))
    return json_response(reply)


def _describe(call: Call, identity: str) -> dict[str, Any]:
    authorizer = call.state.authorizer
    started = format_time(call.state.started_at)
    if identity and identity == authorizer.admin:
        return {"admin": True, "created_at": started}
    policy = authorizer.policy_of(identity) if identity else None
    if policy is None:
        raise IdentityNotFound()
    return {"policy": policy.name, "created_at": started, "created_by": authorizer.admin}


def _policy(call: Call) -> Policy:
    name = call.resource
    if not valid_name(name):
        raise APIError(
            f"policy name '{name}' is empty, too long or contains invalid characters", status=400
        )
    policy = call.state.authorizer.policies.get(name)
    if policy is None:
        raise PolicyNotFound()
    return policy


def _rules(policy: Policy) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    # Go's encoder writes map keys sorted.
    if policy.allow:
        rules["allow"] = {pattern: {} for pattern in sorted(policy.allow)}
    if policy.deny:
        rules["deny"] = {pattern: {} for pattern in sorted(policy.deny)}
    return rules
