"""The page data cache (ichnaea.web.site.cache)."""

from __future__ import annotations

import asyncio

import pytest

from ichnaea.web.site.cache import TtlCache


def test_page_data_cache_loads_once_per_ttl_and_keeps_no_failure() -> None:
    now = [0.0]
    cache = TtlCache(300, clock=lambda: now[0])
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    async def fail() -> int:
        raise OSError("down")

    async def scenario() -> None:
        assert await cache.get("a", load) == 1
        now[0] = 299
        assert await cache.get("a", load) == 1
        now[0] = 300
        assert await cache.get("a", load) == 2
        with pytest.raises(OSError):
            await cache.get("b", fail)
        assert await cache.get("b", load) == 3

    asyncio.run(scenario())
