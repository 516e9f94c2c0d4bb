"""Redis connections: one pool per process, created by its owner.

The web role uses the asyncio client in its lifespan; workers and CLI
commands use the synchronous one. Timeouts are short so that a Redis outage
shows up as a quick error the caller can degrade on, not a hung request.

A ``redis+cluster://host:port,host:port`` URL (or ``REDIS_CLUSTER_NODES``)
gives redis-py's cluster client instead. It offers the same commands and
routes each by its key's hash slot; the few places where the two differ
(a transaction that meets keys of several slots, a multi-key read) ask
:func:`is_cluster` and take the cluster's way (``ichnaea.broker.outbox``).
The functions here are typed as returning the plain client for that
reason: the cluster client is a drop-in for every command we use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast, overload
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import KeyT

from ichnaea.config import CLUSTER_SCHEMES, Settings, cluster_nodes

# What a Redis outage raises: redis-py's errors, socket errors, and the
# cluster client's own, which are no RedisError (an unreachable cluster
# raises RedisClusterUnreachableError, a RedisClusterException).
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, or the embedded server's socket."""
    if settings.redis_url is not None:
        return settings.redis_url
    return f"unix://{settings.embedded_redis_socket}"


def _cluster_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url.replace("+cluster", "", 1))
    return {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "ssl": parts.scheme == "rediss",
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
    }


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (either flavour of redis-py's client)."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def connect(settings: Settings, *, max_connections: int = 50) -> redis.Redis:
    return connect_url(redis_url(settings), max_connections=max_connections)


def connect_url(url: str, *, max_connections: int = 50) -> redis.Redis:
    """A synchronous client of ``url`` (a server, a unix socket, or a cluster)."""
    if url.startswith(CLUSTER_SCHEMES):
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in cluster_nodes(url)]  # type: ignore[no-untyped-call]
        cluster = redis.cluster.RedisCluster(
            startup_nodes=nodes, max_connections=max_connections, **_cluster_options(url)
        )
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


def connect_async(settings: Settings, *, max_connections: int = 100) -> redis.asyncio.Redis:
    return connect_async_url(redis_url(settings), max_connections=max_connections)


def connect_async_url(url: str, *, max_connections: int = 100) -> redis.asyncio.Redis:
    """An asyncio client of ``url`` (a server, a unix socket, or a cluster)."""
    if url.startswith(CLUSTER_SCHEMES):
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in cluster_nodes(url)]
        cluster = redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, max_connections=max_connections, **_cluster_options(url)
        )
        return cast(redis.asyncio.Redis, cluster)
    return redis.asyncio.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        # One immediate retry: during an outage requests must fail fast and degrade.
        retry=AsyncRetry(NoBackoff(), 1),
    )


def mget(client: redis.Redis, keys: Sequence[KeyT]) -> list[Any]:
    """``MGET``; on a cluster, one per hash slot (the keys may lie in several)."""
    if is_cluster(client):
        return list(client.mget_nonatomic(keys))  # type: ignore[attr-defined]
    return list(client.mget(keys))


async def mget_async(client: redis.asyncio.Redis, keys: Sequence[KeyT]) -> list[Any]:
    """``MGET`` on the asyncio client; on a cluster, one per hash slot."""
    if is_cluster(client):
        return list(await client.mget_nonatomic(keys))  # type: ignore[attr-defined]
    return list(await client.mget(keys))


@overload
def decoded(value: None) -> None: ...
@overload
def decoded(value: bytes | str) -> str: ...
def decoded(value: bytes | str | None) -> str | None:
    """A Redis reply as text: our clients do not decode responses, so keys come as bytes."""
    return value.decode() if isinstance(value, bytes) else value
