"""The listening socket: a port that cannot be bound is a start-up error naming the address."""

from __future__ import annotations

import socket

import pytest

from aiokes.config import ListenAddress
from aiokes.errors import ServerStartError
from aiokes.server.listener import listen_socket


def test_a_port_in_use_is_a_start_up_error_that_names_it() -> None:
    taken = listen_socket(ListenAddress("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"cannot listen on 127.0.0.1:{port}: ") as info:
            listen_socket(ListenAddress("127.0.0.1", port))
        assert isinstance(info.value.__cause__, OSError)  # the reason, kept for the log
    finally:
        taken.close()


def test_a_free_port_listens() -> None:
    sock = listen_socket(ListenAddress("127.0.0.1", 0))
    try:
        assert sock.type == socket.SOCK_STREAM
        assert sock.getsockname()[1] != 0
    finally:
        sock.close()
