"""What a run asks of the server: the operation mix, the key names, the connection policy.

Connection policies:

* ``keepalive``: every virtual user owns one connection for the whole run (handshakes happen
  before measuring);
* ``handshake``: a new connection with a full TLS handshake for every request;
* ``resumed``: a new connection per request that resumes the previous TLS session;
* ``goclient``: Go's ``http.Transport`` as MinIO configures it: at most 2 idle keep-alive
  connections per host; a request that finds none idle opens a new (resumed) connection,
  which is closed after use if 2 are already idle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from enum import StrEnum

from bench.wire import build_request, json_body

__all__ = [
    "CONTEXT",
    "SCENARIOS",
    "Policy",
    "RequestSource",
    "Scenario",
    "Workload",
    "get_scenario",
    "key_names",
]

# What MinIO sends for an SSE-S3 object: {"<bucket>":"<bucket>/<object>"} (spec §11.2).
CONTEXT = b'{"bench":"bench/object"}'


class Policy(StrEnum):
    KEEPALIVE = "keepalive"
    HANDSHAKE = "handshake"
    RESUMED = "resumed"
    GOCLIENT = "goclient"

    @property
    def new_connection_per_request(self) -> bool:
        return self in (Policy.HANDSHAKE, Policy.RESUMED)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    policy: Policy
    generate: int  # weight of generate requests in the mix
    decrypt: int  # weight of decrypt requests
    keys: int  # number of distinct key names
    miss_storm: bool  # every request names the next key: a cache miss until the names wrap
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("generate", Policy.KEEPALIVE, 1, 0, 1, False, "generate, keep-alive"),
        Scenario("decrypt", Policy.KEEPALIVE, 0, 1, 1, False, "decrypt, keep-alive"),
        Scenario("mixed", Policy.KEEPALIVE, 1, 3, 16, False, "generate:decrypt over K keys"),
        Scenario(
            "miss-storm", Policy.KEEPALIVE, 1, 0, 2000, True, "generate over distinct cold keys"
        ),
        Scenario("handshake", Policy.HANDSHAKE, 1, 0, 1, False, "full TLS handshake per request"),
        Scenario("resumed", Policy.RESUMED, 1, 0, 1, False, "resumed TLS handshake per request"),
        Scenario("goclient", Policy.GOCLIENT, 1, 3, 16, False, "MinIO's Go client: 2 idle conns"),
    )
}


def get_scenario(
    name: str, *, keys: int | None = None, mix: tuple[int, int] | None = None
) -> Scenario:
    """A named scenario, with the key count and generate:decrypt mix overridden if given."""
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})") from None
    if keys is not None:
        scenario = replace(scenario, keys=keys)
    if mix is not None and scenario.generate and scenario.decrypt:
        scenario = replace(scenario, generate=mix[0], decrypt=mix[1])
    return scenario


def key_names(scenario: Scenario, prefix: str = "bench-key") -> tuple[str, ...]:
    return tuple(f"{prefix}-{index:05d}" for index in range(scenario.keys))


@dataclass(frozen=True, slots=True)
class Workload:
    """Everything a load process needs to build its requests (picklable)."""

    scenario: Scenario
    keys: tuple[str, ...]
    ciphertexts: dict[str, bytes]  # one sealed DEK per key name, for decrypt requests
    context: bytes = CONTEXT


class RequestSource:
    """Pre-encoded requests, handed out round-robin over the op mix and this process's keys."""

    def __init__(self, workload: Workload, authority: str, *, share: tuple[int, int]) -> None:
        scenario = workload.scenario
        close = scenario.policy.new_connection_per_request
        index, count = share
        # Processes take disjoint slices of the key names, so a miss storm stays cold.
        keys = workload.keys[index::count] if scenario.miss_storm else workload.keys
        keys = keys or workload.keys
        ops = ["generate"] * scenario.generate + ["decrypt"] * scenario.decrypt
        self._requests = [
            _request(op, key, workload, authority, close)
            for key, op in _interleave(keys, ops, start=index)
        ]
        self._cycle = itertools.cycle(self._requests)

    def __len__(self) -> int:
        return len(self._requests)

    def next(self) -> bytes:
        return next(self._cycle)


def _interleave(keys: tuple[str, ...], ops: list[str], *, start: int) -> list[tuple[str, str]]:
    """Every key with every op: each key in turn gets the whole op pattern."""
    pairs = []
    for position in range(len(keys) * len(ops)):
        key = keys[(position // len(ops) + start) % len(keys)]
        pairs.append((key, ops[position % len(ops)]))
    return pairs


def _request(op: str, key: str, workload: Workload, authority: str, close: bool) -> bytes:
    if op == "generate":
        body = json_body(context=workload.context)
    else:
        body = json_body(ciphertext=workload.ciphertexts[key], context=workload.context)
    return build_request("POST", f"/v1/key/{op}/{key}", authority, body, close=close)
