"""The hand-assembled hot-path bodies are byte-identical to what the JSON encoder writes."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from aiokes.api.wire import base64_response, json_response


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_base64_response_matches_the_json_encoder(first: bytes, second: bytes) -> None:
    fast = base64_response(("plaintext", first), ("ciphertext", second))
    slow = json_response(
        {
            "plaintext": base64.b64encode(first).decode(),
            "ciphertext": base64.b64encode(second).decode(),
        }
    )
    assert fast.body == slow.body
    assert fast.content_type == slow.content_type == "application/json"
