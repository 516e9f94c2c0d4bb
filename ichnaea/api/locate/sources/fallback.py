"""The fallback source: ask the API key's external provider (position only).

It runs last, and only when the key may use a provider, the query has
Bluetooth, cell or Wi-Fi data (a cell area alone is not enough), and the
results so far do not satisfy the query. A provider answer scores 10 (5
when the provider itself fell back to a cell area), so it normally wins.
"""

from __future__ import annotations

from ichnaea.api.keys import ApiKey
from ichnaea.api.locate.constants import FALLBACK_LACF_SCORE, FALLBACK_SCORE
from ichnaea.api.locate.fallback import (
    DEFAULT_SCHEMA,
    SCHEMAS,
    FallbackClient,
    FallbackConfig,
    FallbackNetworks,
)
from ichnaea.api.locate.query import Query
from ichnaea.api.locate.result import DataSource, Position, satisfies
from ichnaea.privacy import is_opted_out, strip_opted_out


def fallback_config(api_key: ApiKey) -> FallbackConfig | None:
    """The provider settings of a key, or None if it may not (or cannot) use one."""
    if not api_key.can_fallback():
        return None
    schema = api_key.fallback_schema or DEFAULT_SCHEMA
    interval = api_key.fallback_ratelimit_interval or 0
    if schema not in SCHEMAS or interval <= 0:
        return None  # a misconfigured key row must not fail the request
    return FallbackConfig(
        name=api_key.fallback_name or "",
        schema=schema,
        url=api_key.fallback_url or "",
        ratelimit=api_key.fallback_ratelimit,
        ratelimit_interval_s=interval,
        cache_expire_s=api_key.fallback_cache_expire,
    )


def should_search(query: Query, api_key: ApiKey, results: list[Position]) -> bool:
    return (
        api_key.can_fallback()
        and bool(query.blue or query.cell or query.wifi)
        and not satisfies(results, query.expected_accuracy)
    )


async def search(client: FallbackClient, query: Query, api_key: ApiKey) -> list[Position]:
    config = fallback_config(api_key)
    if config is None:
        return []
    # Opted-out networks never leave the service (ichnaea.privacy), so the
    # provider neither sees them nor do they key its cached answers.
    body = strip_opted_out(query.json())
    wifi = [w for w in query.wifi if not is_opted_out(w.ssid)]
    networks = FallbackNetworks(
        blue=tuple(bytes.fromhex(b.mac) for b in query.blue),
        cell=tuple(c.cellid for c in query.cell),
        wifi=tuple(bytes.fromhex(w.mac) for w in wifi),
    )
    answer = await client.locate(config, body, networks)
    if answer is None:
        return []
    score = FALLBACK_LACF_SCORE if answer.fallback == "lacf" else FALLBACK_SCORE
    return [
        Position(
            answer.lat, answer.lon, answer.accuracy_m, score, DataSource.fallback, answer.fallback
        )
    ]
