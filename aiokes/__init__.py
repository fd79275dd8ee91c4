"""aiokes: a KES-compatible key encryption service on aiohttp and uvloop."""

from aiokes.__about__ import __version__

__all__ = ["__version__"]
