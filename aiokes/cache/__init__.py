"""The master-key cache and what handlers see of it.

* :mod:`~aiokes.cache.keycache`: :class:`KeyCache`, KES's expiry semantics in front of a
  keystore; :mod:`~aiokes.cache.ticker` schedules its periodic jobs.
* :mod:`~aiokes.cache.settings` and :mod:`~aiokes.cache.stats`: its one settings type (also the
  config file's ``cache:``) and its one counters type (also the metrics and ``/v1/status``).
* :mod:`~aiokes.cache.source`: :class:`KeySource`, master keys by name wherever the cache lives
  (this process, or the key keeper of a multi-process server, :mod:`aiokes.keeper`).
"""

from __future__ import annotations

from aiokes.cache.keycache import KeyCache
from aiokes.cache.settings import CacheSettings
from aiokes.cache.source import KeySource
from aiokes.cache.stats import CacheStats

__all__ = ["CacheSettings", "CacheStats", "KeyCache", "KeySource"]
