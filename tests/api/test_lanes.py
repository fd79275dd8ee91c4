"""What the dispatcher remembers per connection for the immediate path (its "lanes": route,
admission, audit part per method and path) never outlives what it was worked out from: a
reload, a deleted key, another method, a name the lane did not check, a connection's many
paths. Each request here goes on ONE keep-alive connection, where a stale lane would show."""

from __future__ import annotations

import json

from tests.api.helpers import send
from tests.conftest import RunningServer
from tests.http.raw import connect, request

GENERATE_BODY = b'{"context":"Y3R4"}'


async def test_a_reload_that_revokes_a_policy_refuses_the_next_request_on_the_same_connection(
    server: RunningServer,
) -> None:
    await server.client().create_key("my-key")
    async with connect(server, server.app) as raw:
        await raw.send(request("PUT", "/v1/key/generate/my-key", GENERATE_BODY))
        assert (await raw.answer()).status == 200
        text = server.config_file.read_text()
        server.config_file.write_text(text.replace("/v1/key/generate/my-key*", "/v1/nothing"))
        await server.server.reload()
        await server.client().generate_key("my-key")  # cached again after the reload
        await raw.send(request("PUT", "/v1/key/generate/my-key", GENERATE_BODY))
        refused = await raw.answer()
    fresh = await send(server, "PUT", "/v1/key/generate/my-key", GENERATE_BODY, who=server.app)
    assert refused.status == fresh.status == 403
    assert refused.body == fresh.body


async def test_a_reload_that_grants_a_policy_serves_the_next_request_on_the_same_connection(
    server: RunningServer,
) -> None:
    await server.client().create_key("other")
    async with connect(server, server.app) as raw:
        await raw.send(request("PUT", "/v1/key/generate/other", GENERATE_BODY))
        assert (await raw.answer()).status == 403
        text = server.config_file.read_text()
        server.config_file.write_text(text.replace("/v1/key/generate/my-key*", "/v1/key/*"))
        await server.server.reload()
        await raw.send(request("PUT", "/v1/key/generate/other", GENERATE_BODY))
        granted = await raw.answer()
    assert granted.status == 200, granted
    assert set(json.loads(granted.body)) == {"plaintext", "ciphertext"}


async def test_a_deleted_key_is_not_served_on_a_connection_that_used_it(
    server: RunningServer,
) -> None:
    admin = server.client()
    await admin.create_key("gone")
    async with connect(server) as raw:
        await raw.send(request("PUT", "/v1/key/generate/gone", GENERATE_BODY))
        assert (await raw.answer()).status == 200
        await admin.delete_key("gone")
        await raw.send(request("PUT", "/v1/key/generate/gone", GENERATE_BODY))
        missing = await raw.answer()
    assert missing.status == 404
    assert missing.body == b'{"message":"key does not exist"\n}'


async def test_another_method_on_a_known_path_is_refused_as_on_a_fresh_connection(
    server: RunningServer,
) -> None:
    await server.client().create_key("k")
    async with connect(server) as raw:
        await raw.send(request("PUT", "/v1/key/generate/k", GENERATE_BODY))
        assert (await raw.answer()).status == 200
        await raw.send(request("GET", "/v1/key/generate/k"))
        refused = await raw.answer()
        await raw.send(request("POST", "/v1/key/generate/k", GENERATE_BODY))  # old clients
        again = await raw.answer()
    fresh = await send(server, "GET", "/v1/key/generate/k")
    assert (refused.status, refused.body) == (fresh.status, fresh.body) == (405, fresh.body)
    assert again.status == 200


async def test_many_paths_on_one_connection_are_each_answered_as_on_a_fresh_one(
    server: RunningServer,
) -> None:
    """More paths than a connection remembers, with invalid names among them: the lanes are
    bounded, and a name the immediate path may not take gets the full path's error."""
    admin = server.client()
    names = [f"k{i}" for i in range(100)]
    for name in names[:3]:
        await admin.create_key(name)
    invalid = ["-k", "k-", "_", "a" * 81, "k%21"]
    async with connect(server) as raw:
        answers = {}
        for name in [*names, *invalid, names[0]]:
            await raw.send(request("PUT", f"/v1/key/generate/{name}", GENERATE_BODY))
            answers[name] = await raw.answer()
    assert [answers[name].status for name in names[:3]] == [200, 200, 200]
    assert {answers[name].status for name in names[3:]} == {404}
    for name in invalid:
        fresh = await send(server, "PUT", f"/v1/key/generate/{name}", GENERATE_BODY)
        assert (answers[name].status, answers[name].body) == (fresh.status, fresh.body)
        assert fresh.status == 400, name


async def test_an_invalid_name_is_refused_before_a_malformed_body_on_every_hot_route(
    server: RunningServer,
) -> None:
    """The full path checks the name first; the immediate path must not answer such a
    request with the body's error instead."""
    async with connect(server) as raw:
        for route in ("generate", "encrypt", "decrypt"):
            await raw.send(request("PUT", f"/v1/key/{route}/-k", b"not json"))
            answer = await raw.answer()
            assert answer.status == 400, route
            message = json.loads(answer.body)["message"]
            assert message == "key name '-k' is empty, too long or contains invalid characters"
