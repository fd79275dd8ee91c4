"""Handlers of ``/v1/policy/*``: read-only views of the config's policies."""

from __future__ import annotations

from typing import Any

from aiokes._go.time import format_go_time
from aiokes.api.call import Call
from aiokes.api.keys import list_prefix
from aiokes.api.wire import json_response
from aiokes.errors import APIError, PolicyNotFound
from aiokes.http import Response
from aiokes.identity import valid_name
from aiokes.policy import Policy

__all__ = ["describe_policy", "list_policies", "policy_rules", "read_policy"]


async def describe_policy(call: Call) -> Response:
    policy = _policy(call)
    return json_response(
        {
            "name": policy.name,
            "created_at": format_go_time(policy.created_at),
            "created_by": policy.created_by,
        }
    )


async def read_policy(call: Call) -> Response:
    policy = _policy(call)
    reply: dict[str, Any] = {"name": policy.name}
    reply.update(policy_rules(policy))
    reply["created_at"] = format_go_time(policy.created_at)
    reply["created_by"] = policy.created_by
    return json_response(reply)


async def list_policies(call: Call) -> Response:
    prefix = list_prefix(call.resource)
    names = sorted(name for name in call.state.authorizer.policies if name.startswith(prefix))
    return json_response({"names": names, "continue_at": ""})


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


def policy_rules(policy: Policy) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    # Go's encoder writes map keys sorted.
    if policy.allow:
        rules["allow"] = {pattern: {} for pattern in sorted(policy.allow)}
    if policy.deny:
        rules["deny"] = {pattern: {} for pattern in sorted(policy.deny)}
    return rules
