"""A short-lived cache of page data, one per site (never a module global).

The pages show what changes at most hourly (tile runs, exports) or daily
(``stat``, ``region_stat``), so each value is loaded at most once per
``ttl_s`` per web process. Loads of one key are single-flight: requests
that arrive while a value is being loaded wait for that load instead of
starting their own. A load that raises caches nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class TtlCache:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The value of ``key``: cached while younger than the TTL, else ``await load()``."""
        hit = self._values.get(key)
        if hit is not None and self._clock() < hit[0]:
            return cast(T, hit[1])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._values.get(key)
            if hit is not None and self._clock() < hit[0]:
                return cast(T, hit[1])
            value = await load()
            self._values[key] = (self._clock() + self._ttl_s, value)
            return value
