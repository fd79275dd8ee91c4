"""Server lifecycle: reload swaps the whole state, a broken config changes nothing, stop drains."""

from __future__ import annotations

import pytest

from aiokes.errors import NotAllowed
from tests.conftest import RunningServer


async def test_reload_swaps_policies_and_starts_with_an_empty_cache(
    server: RunningServer,
) -> None:
    admin, app = server.client(), server.client(server.app)
    await admin.create_key("my-key")
    await app.generate_key("my-key")
    old_state = server.server.state
    text = server.config_file.read_text().replace("/v1/key/generate/my-key*", "/v1/key/nothing")
    server.config_file.write_text(text)

    await server.server.reload()

    assert server.server.state is not old_state
    assert server.server.state.keys.stats().entries == 0
    with pytest.raises(NotAllowed):
        await app.generate_key("my-key")
    assert await admin.generate_key("my-key")  # keys survive: they live in the keystore


async def test_reload_with_a_broken_config_keeps_serving_the_old_one(
    server: RunningServer,
) -> None:
    app = server.client(server.app)
    await server.client().create_key("my-key")
    old_state = server.server.state
    server.config_file.write_text(server.config_file.read_text() + "\ntls:\n  auth: maybe\n")

    await server.server.reload()

    assert server.server.state is old_state
    assert await app.generate_key("my-key")


async def test_reload_logs_exactly_why_it_failed(server: RunningServer) -> None:
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("aiokes.error").addHandler(handler)
    try:
        server.config_file.write_text(
            server.config_file.read_text() + "\ncache:\n  expiry:\n    any: -5m\n"
        )
        await server.server.reload()
    finally:
        logging.getLogger("aiokes.error").removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert any(
        "reload failed" in m and "config.yml" in m and "cache.expiry.any" in m for m in messages
    ), messages


async def test_stop_closes_the_keystore_and_refuses_new_connections(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    await server.server.stop()
    with pytest.raises(Exception, match=r"cannot reach"):
        await server.client().version()
