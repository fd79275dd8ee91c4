"""The server's HTTP/1.1 layer: a lean protocol on uvloop with the httptools (llhttp) parser.

aiohttp's server machinery cost two thirds of a request's CPU (bench/RESULTS.md); this does
only what KES's clients need: keep-alive, pipelining, HTTP/1.0, ``Expect: 100-continue``,
chunked and sized bodies, streaming answers, bounded waits, and refusal of ambiguous framing.
"""

from __future__ import annotations

from aiokes.http.listener import Handler, Limits, Listener
from aiokes.http.request import BODY_CAP, BadBody, Request, Stream
from aiokes.http.response import Response, header_block

__all__ = [
    "BODY_CAP",
    "BadBody",
    "Handler",
    "Limits",
    "Listener",
    "Request",
    "Response",
    "Stream",
    "header_block",
]
