"""Handlers of ``/v1/identity/*``: who the config knows, and who is asking."""

from __future__ import annotations

from typing import Any

from aiokes._go.time import format_go_time
from aiokes.api.call import Call
from aiokes.api.keys import list_prefix
from aiokes.api.policies import policy_rules
from aiokes.api.wire import json_response
from aiokes.errors import APIError, IdentityNotFound
from aiokes.http import Response
from aiokes.identity import valid_name

__all__ = ["describe_identity", "describe_self", "list_identities"]


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
        reply.update(policy_rules(policy))
    return json_response(reply)


def _describe(call: Call, identity: str) -> dict[str, Any]:
    authorizer = call.state.authorizer
    started = format_go_time(call.state.started_at)
    if identity and identity == authorizer.admin:
        return {"admin": True, "created_at": started}
    policy = authorizer.policy_of(identity) if identity else None
    if policy is None:
        raise IdentityNotFound()
    return {"policy": policy.name, "created_at": started, "created_by": authorizer.admin}
