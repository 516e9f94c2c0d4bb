"""Redis connections: one pool per process, created by its owner.

The web role uses the asyncio client in its lifespan; workers and CLI
commands use the synchronous one. Timeouts are short so that a Redis outage
shows up as a quick error the caller can degrade on, not a hung request.
"""

from __future__ import annotations

from typing import overload

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ichnaea.config import Settings

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, or the embedded server's socket."""
    if settings.redis_url is not None:
        return settings.redis_url
    return f"unix://{settings.embedded_redis_socket}"


def connect(settings: Settings, *, max_connections: int = 50) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url(settings),
        max_connections=max_connections,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def connect_async(settings: Settings, *, max_connections: int = 100) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        redis_url(settings),
        max_connections=max_connections,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        # One immediate retry: during an outage requests must fail fast and degrade.
        retry=AsyncRetry(NoBackoff(), 1),
    )


@overload
def decoded(value: None) -> None: ...
@overload
def decoded(value: bytes | str) -> str: ...
def decoded(value: bytes | str | None) -> str | None:
    """A Redis reply as text: our clients do not decode responses, so keys come as bytes."""
    return value.decode() if isinstance(value, bytes) else value
