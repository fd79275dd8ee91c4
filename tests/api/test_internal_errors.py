"""A bug of ours answers 500 "internal server error" and logs its traceback, on the immediate
path (a cached key's generate, answered from the read callback) as on the coroutine path; the
connection and the server go on serving."""

from __future__ import annotations

import pytest

import aiokes.api.keys
from aiokes.api.call import Call
from aiokes.http import Response
from aiokes.log import error_logger
from tests.api.helpers import send
from tests.conftest import RecordingHandler, StartServer


def _broken(*args: object) -> Response:
    raise RuntimeError("a bug")


async def _broken_async(call: Call) -> Response:
    raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("handler", "broken"),
    [("generate_now", _broken), ("generate", _broken_async)],
)
async def test_a_bug_in_a_handler_is_a_500_with_its_traceback_in_the_error_log(
    start_server: StartServer,
    monkeypatch: pytest.MonkeyPatch,
    handler: str,
    broken: object,
) -> None:
    monkeypatch.setattr(aiokes.api.keys, handler, broken)  # before the route table is built
    server = await start_server()
    assert (await send(server, "POST", "/v1/key/create/k")).status == 200
    if handler == "generate":  # the coroutine path: the key must not be cached
        await server.server.state.master_keys.aclose()
    error_log = RecordingHandler()  # after the start: the server configures its loggers
    error_logger.addHandler(error_log)
    try:
        reply = await send(server, "PUT", "/v1/key/generate/k", b"{}")
    finally:
        error_logger.removeHandler(error_log)
    assert reply.is_error(500, "internal server error"), reply
    failures = [r for r in error_log.records if "internal error" in r.getMessage()]
    assert [r.getMessage() for r in failures] == ["PUT /v1/key/generate/k: internal error"]
    assert failures[0].exc_info is not None
    assert (await send(server, "GET", "/v1/key/describe/k")).status == 200  # still serving
